"""HTTP/1.1 over loopback TCP: keep-alive, ``POST /messages``, real request line and headers.

The envelope travels as headers (X-Seq, X-Sent-Ns, X-Serialize-Ns, X-CRC32) and the payload as
the body, so the bytes panel shows what HTTP costs: a head of a couple of hundred bytes around
every payload, and a parse on both sides. Requests and responses are written and parsed with h11
(a sans-I/O HTTP/1.1 implementation), on a socket we own, so every byte on the wire is known.
In stream the server answers ``204 No Content`` at once; in ping-pong ``200 OK`` echoes the body.
"""

from __future__ import annotations

import socket
from pathlib import Path

import h11

from ipc_explorer.codecs.base import Span
from ipc_explorer.transports import register
from ipc_explorer.transports.base import (
    MAX_STREAM_MESSAGE,
    ChannelClosed,
    ChannelPlan,
    Frame,
    Limits,
    Transport,
    TransportError,
    TransportOptions,
    monotonic_ns,
)
from ipc_explorer.transports.sockets import socket_buffer
from ipc_explorer.transports.tcp import make_listener, set_nodelay

#: A typical head (request line and headers) size, for the limit check before the run.
HEAD_ALLOWANCE = 256


def _envelope_headers(seq: int, t_send: int, ser_ns: int, crc: int) -> list[tuple[str, str]]:
    return [
        ("X-Seq", str(seq)),
        ("X-Sent-Ns", str(t_send)),
        ("X-Serialize-Ns", str(ser_ns)),
        ("X-CRC32", f"{crc:08x}"),
    ]


def head_spans(head: bytes) -> list[Span]:
    """One span per line of an HTTP head (request/status line, each header, the blank line)."""
    spans = []
    pos = 0
    for index, line in enumerate(head.split(b"\r\n")[:-1]):
        end = pos + len(line) + 2
        text = line.decode("latin-1")
        if index == 0:
            spans.append(Span(pos, end, "http.start_line", "framing", text))
        elif line:
            name = text.split(":", 1)[0]
            spans.append(Span(pos, end, f"http.headers.{name}", "framing", text))
        else:
            spans.append(Span(pos, end, "http.end_of_head", "framing", "blank line: end of head"))
        pos = end
    return spans


@register
class HttpTransport(Transport):
    name = "http"
    title = "HTTP/1.1 (loopback)"
    boundaries = "request"

    @classmethod
    def create(
        cls, options: TransportOptions, workdir: Path, tag: str, duplex: bool
    ) -> ChannelPlan:
        listener, port = make_listener(options, "HTTP port")
        buffer = socket_buffer(listener)
        return ChannelPlan(
            mechanism=cls.name,
            duplex=duplex,
            workdir=str(workdir),
            options=options,
            limits=Limits(
                max_wire=MAX_STREAM_MESSAGE,
                overhead=HEAD_ALLOWANCE,
                limit_text=(
                    f"ipc-explorer caps an HTTP body at {MAX_STREAM_MESSAGE - HEAD_ALLOWANCE} bytes"
                ),
                buffer_bytes=buffer,
            ),
            names={"host": options.host, "port": port},
            fds={"sender": {}, "receiver": {"listen": listener.detach()}},
        )

    def open(self) -> None:
        names = self.plan.names
        self._host = f"{names['host']}:{names['port']}"
        if self.role == "receiver":
            listener = socket.socket(fileno=self.plan.fds["receiver"]["listen"])
            try:
                sock, _ = listener.accept()
            finally:
                listener.close()
            self.conn = h11.Connection(h11.SERVER)
        else:
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            try:
                sock.connect((names["host"], names["port"]))
            except OSError as exc:
                sock.close()
                raise TransportError(f"cannot connect to the HTTP server: {exc.strerror}") from None
            self.conn = h11.Connection(h11.CLIENT)
        # Python writes head and body separately; with Nagle on, delayed ACKs stall each round.
        set_nodelay(sock, self.plan.options.nagle)
        self.sock = sock
        # One reusable buffer: a fresh 256 KiB bytes per recv costs an mmap/munmap each time.
        self._buf = bytearray(262144)
        self._view = memoryview(self._buf)
        self._peer = "server" if self.role == "sender" else "client"
        self._content_type = self.plan.options.content_type

    # -- bytes -------------------------------------------------------------------------
    def _request_bytes(self, conn: h11.Connection, frame: Frame) -> bytes:
        headers = [
            ("Host", self._host_header()),
            ("Content-Type", self.plan.options.content_type),
            ("Content-Length", str(len(frame.payload))),
            *_envelope_headers(frame.seq, frame.t_send, frame.ser_ns, frame.crc),
        ]
        head = conn.send(h11.Request(method="POST", target="/messages", headers=headers))
        return (
            head
            + (conn.send(h11.Data(data=frame.payload)) or b"")
            + (conn.send(h11.EndOfMessage()) or b"")
        )

    def _response_bytes(self, conn: h11.Connection, frame: Frame | None) -> bytes:
        if frame is None:
            head = conn.send(h11.Response(status_code=204, headers=[("Server", "ipc-explorer")]))
            return head + (conn.send(h11.EndOfMessage()) or b"")
        headers = [
            ("Server", "ipc-explorer"),
            ("Content-Type", self.plan.options.content_type),
            ("Content-Length", str(len(frame.payload))),
            *_envelope_headers(frame.seq, frame.t_send, frame.ser_ns, frame.crc),
        ]
        head = conn.send(h11.Response(status_code=200, headers=headers))
        return (
            head
            + (conn.send(h11.Data(data=frame.payload)) or b"")
            + (conn.send(h11.EndOfMessage()) or b"")
        )

    def _host_header(self) -> str:
        names = self.plan.names
        return f"{names['host']}:{names['port']}"

    def _sendall(self, data: bytes) -> None:
        try:
            self.sock.sendall(data)
        except (BrokenPipeError, ConnectionResetError) as exc:
            name = "EPIPE" if isinstance(exc, BrokenPipeError) else "ECONNRESET"
            raise ChannelClosed(name, f"the HTTP {self._peer} is gone ({name})") from None

    def _next_message(self) -> tuple[h11.Request | h11.Response, bytes]:
        """Read one whole request or response (head and body) from the connection."""
        conn = self.conn
        head = None
        body: list[bytes] = []
        while True:
            try:
                event = conn.next_event()
            except h11.RemoteProtocolError as exc:
                raise TransportError(f"malformed HTTP from the {self._peer}: {exc}") from None
            if event is h11.NEED_DATA:
                try:
                    n = self.sock.recv_into(self._buf)
                except ConnectionResetError:
                    raise ChannelClosed(
                        "ECONNRESET", f"the HTTP {self._peer} reset the connection"
                    ) from None
                conn.receive_data(self._view[:n].tobytes())
                continue
            if isinstance(event, (h11.Request, h11.Response)):
                if isinstance(event, h11.InformationalResponse):
                    continue
                head = event
            elif isinstance(event, h11.Data):
                body.append(event.data)
            elif isinstance(event, h11.EndOfMessage):
                assert head is not None
                return head, b"".join(body)
            elif isinstance(event, h11.ConnectionClosed):
                raise ChannelClosed("EOF", f"the HTTP {self._peer} closed the connection")

    @staticmethod
    def _frame_from(head: h11.Request | h11.Response, body: bytes) -> Frame:
        fields = {name: value for name, value in head.headers}
        try:
            return Frame(
                int(fields[b"x-seq"]),
                int(fields[b"x-sent-ns"]),
                int(fields[b"x-serialize-ns"]),
                int(fields[b"x-crc32"], 16),
                body,
            )
        except (KeyError, ValueError) as exc:
            raise TransportError(f"HTTP message without a valid envelope header: {exc}") from None

    # -- the interface -------------------------------------------------------------------
    def send(self, seq: int, ser_ns: int, crc: int, payload: bytes) -> int:
        self.limits.check(len(payload))
        frame = Frame(seq, monotonic_ns(), ser_ns, crc, payload)
        if self.role == "sender":
            data = self._request_bytes(self.conn, frame)
            self._sendall(data)
            if not self.plan.duplex:
                head, _ = self._next_message()  # 204: the server has the message
                self.conn.start_next_cycle()
                if head.status_code != 204:
                    raise TransportError(f"the HTTP server answered {head.status_code}")
        else:
            data = self._response_bytes(self.conn, frame)
            self._sendall(data)
            self.conn.start_next_cycle()
        return len(data)

    def recv(self) -> Frame:
        head, body = self._next_message()
        frame = self._frame_from(head, body)
        if self.role == "receiver" and not self.plan.duplex:
            self._sendall(self._response_bytes(self.conn, None))
            self.conn.start_next_cycle()
        elif self.role == "sender":
            self.conn.start_next_cycle()
        return frame

    def close(self) -> None:
        sock = getattr(self, "sock", None)
        if sock is not None:
            sock.close()

    def wire_image(self, frame: Frame, forward: bool = True) -> tuple[bytes, list[Span]]:
        """The request (forward) or the echoing response carrying ``frame``."""
        fresh = h11.Connection(h11.CLIENT if forward else h11.SERVER)
        if not forward:
            # A server can only respond after a request has been received.
            fresh.receive_data(b"POST /messages HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n")
            fresh.next_event()
            fresh.next_event()
        data = self._request_bytes(fresh, frame) if forward else self._response_bytes(fresh, frame)
        head = data[: len(data) - len(frame.payload)]
        return data, head_spans(head)

    def kernel_object(self) -> str:
        names = self.plan.names
        nagle = "Nagle on" if self.plan.options.nagle else "TCP_NODELAY"
        return f"http://{names['host']}:{names['port']}/messages ({nagle}, keep-alive)"

    def framing_text(self) -> str:
        return (
            "HTTP/1.1 request/response: a request line and headers (the envelope as X-Seq, "
            "X-Sent-Ns, X-Serialize-Ns, X-CRC32; Content-Length) then the payload as the body"
        )
