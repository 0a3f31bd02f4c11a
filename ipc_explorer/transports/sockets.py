"""What the socket mechanisms share: a listening or bound socket made by the parent and
inherited by the receiver (as with systemd socket activation), so a port in use is reported
before any child starts."""

from __future__ import annotations

import socket
from pathlib import Path

from ipc_explorer.transports.base import ChannelClosed, Frame, Role, TransportError
from ipc_explorer.transports.stream import (
    ByteStreamTransport,
    FrameReader,
    closed_error,
    socket_writer,
)


def bind_error(exc: OSError, what: str) -> TransportError:
    if exc.errno == 98:  # EADDRINUSE
        return TransportError(
            f"{what} is already in use (EADDRINUSE); pick another port or stop the program using it"
        )
    if exc.errno == 13:  # EACCES
        return TransportError(f"no permission to bind {what} (EACCES)")
    return TransportError(f"cannot bind {what}: {exc.strerror}")


def socket_buffer(sock: socket.socket) -> int:
    return sock.getsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF)


class ConnectedStreamTransport(ByteStreamTransport):
    """A byte-stream socket: the receiver accepts on the inherited listener, the sender connects."""

    family: int

    def connect_address(self) -> str | tuple[str, int]:
        raise NotImplementedError

    def tune(self, sock: socket.socket) -> None:
        """Per-connection options (TCP_NODELAY)."""

    def open(self) -> None:
        peer = "receiver" if self.role == "sender" else "sender"
        if self.role == "receiver":
            listener = socket.socket(fileno=self.plan.fds["receiver"]["listen"])
            try:
                conn, _ = listener.accept()
            finally:
                listener.close()
        else:
            conn = socket.socket(self.family, socket.SOCK_STREAM)
            try:
                conn.connect(self.connect_address())
            except OSError as exc:
                conn.close()
                raise TransportError(f"cannot connect to the receiver: {exc.strerror}") from None
        self.tune(conn)
        self.sock = conn
        self._write = socket_writer(conn, peer)
        self._reader = FrameReader(conn.recv_into, peer)

    def close(self) -> None:
        sock = getattr(self, "sock", None)
        if sock is not None:
            sock.close()


def dgram_send(
    sock: socket.socket, header: bytes, payload: bytes, peer: str, limit_text: str
) -> int:
    try:
        return sock.sendmsg((header, payload))
    except (ConnectionRefusedError, BrokenPipeError, ConnectionResetError) as exc:
        raise closed_error(exc, peer) from None
    except OSError as exc:
        if exc.errno == 90:  # EMSGSIZE
            from ipc_explorer.transports.base import MessageTooLarge

            raise MessageTooLarge(f"message too large ({exc.strerror}); {limit_text}") from None
        raise


def unlink_quietly(path: str | Path) -> None:
    try:
        Path(path).unlink()
    except OSError:
        pass


__all__ = [
    "ChannelClosed",
    "ConnectedStreamTransport",
    "Frame",
    "Role",
    "bind_error",
    "dgram_send",
    "socket_buffer",
    "unlink_quietly",
]
