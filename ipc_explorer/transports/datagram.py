"""What the datagram mechanisms share: one message is one datagram, envelope first.

The kernel keeps the boundaries, so there is no length prefix; a datagram larger than the
socket allows is refused whole (EMSGSIZE), never split.
"""

from __future__ import annotations

import socket
from typing import Any

from ipc_explorer.codecs.base import Span
from ipc_explorer.transports.base import (
    ENVELOPE,
    ChannelClosed,
    Frame,
    RecvTimeout,
    Transport,
    TransportError,
    envelope_spans,
    monotonic_ns,
)
from ipc_explorer.transports.sockets import dgram_send


class DatagramTransport(Transport):
    boundaries = "datagram"
    sock: socket.socket

    def _setup(self, sock: socket.socket, timeout: float | None) -> None:
        self.sock = sock
        self._buf = bytearray(self.limits.max_wire + 1)
        self._view = memoryview(self._buf)
        self._peer_name = "receiver" if self.role == "sender" else "sender"
        self._reply_to: Any = None
        if timeout is not None:
            sock.settimeout(timeout)

    def send(self, seq: int, ser_ns: int, crc: int, payload: bytes) -> int:
        header = ENVELOPE.pack(seq, monotonic_ns(), ser_ns, crc)
        if self._reply_to is not None:
            try:
                return self.sock.sendto(header + payload, self._reply_to)
            except OSError as exc:
                raise ChannelClosed(
                    "ESEND", f"cannot reply to the sender: {exc.strerror}"
                ) from None
        return dgram_send(self.sock, header, payload, self._peer_name, self.limits.limit_text)

    def recv(self) -> Frame:
        try:
            n, addr = self.sock.recvfrom_into(self._buf)
        except TimeoutError:
            raise RecvTimeout("no datagram within the timeout") from None
        except ConnectionRefusedError:
            raise ChannelClosed(
                "ECONNREFUSED", f"the {self._peer_name} is gone (ECONNREFUSED)"
            ) from None
        if n < ENVELOPE.size:
            raise TransportError(f"runt datagram of {n} bytes")
        if self.role == "receiver" and self.plan.duplex and self.needs_reply_address:
            self._reply_to = addr
        seq, t_send, ser_ns, crc = ENVELOPE.unpack_from(self._buf, 0)
        return Frame(seq, t_send, ser_ns, crc, bytes(self._view[ENVELOPE.size : n]))

    needs_reply_address = False

    def wire_image(self, frame: Frame, forward: bool = True) -> tuple[bytes, list[Span]]:
        header = ENVELOPE.pack(frame.seq, frame.t_send, frame.ser_ns, frame.crc)
        return header + frame.payload, envelope_spans(0, frame)

    def framing_text(self) -> str:
        return (
            "datagrams keep boundaries: one message is one datagram, a "
            f"{ENVELOPE.size}-byte envelope (seq, t_send, serialize ns, crc32) then the payload; "
            "no length prefix"
        )

    def channel_fds(self) -> dict[str, int]:
        sock = getattr(self, "sock", None)
        return {"in": sock.fileno(), "out": sock.fileno()} if sock is not None else {}

    def close(self) -> None:
        sock = getattr(self, "sock", None)
        if sock is not None:
            sock.close()
