"""HTTP/1.1 over loopback TCP: keep-alive, ``POST /messages``, real request line and headers.

The envelope travels as headers (X-Seq, X-Sent-Ns, X-Serialize-Ns, X-CRC32) and the payload as
the body, so the bytes panel shows what HTTP costs: a head of a couple of hundred bytes around
every payload, and a parse on both sides. In stream the server answers ``204 No Content`` at
once; in ping-pong ``200 OK`` echoes the body.

Heads are written here, byte for byte, so every byte on the wire is known; both sides parse with
httptools (the llhttp parser that uvicorn uses), so the parse cost shown is that of a real
Python HTTP stack, not of a pure-Python parser that would dwarf the mechanism.
"""

from __future__ import annotations

import socket
from collections import deque
from pathlib import Path

import httptools

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
from ipc_explorer.transports.sockets import (
    open_connection,
    set_nodelay,
    socket_buffer,
    tcp_listener,
)

#: A typical head (request line and headers) size, for the limit check before the run.
HEAD_ALLOWANCE = 256
#: How long a closing client waits for the 204 of its last request.
ACK_AT_CLOSE_S = 0.2

_REQUEST_HEAD = (
    b"POST /messages HTTP/1.1\r\nHost: %s\r\nContent-Type: %s\r\nContent-Length: %d\r\n"
    b"X-Seq: %d\r\nX-Sent-Ns: %d\r\nX-Serialize-Ns: %d\r\nX-CRC32: %08x\r\n\r\n"
)
_RESPONSE_HEAD = (
    b"HTTP/1.1 200 OK\r\nServer: ipc-explorer\r\nContent-Type: %s\r\nContent-Length: %d\r\n"
    b"X-Seq: %d\r\nX-Sent-Ns: %d\r\nX-Serialize-Ns: %d\r\nX-CRC32: %08x\r\n\r\n"
)
_NO_CONTENT = b"HTTP/1.1 204 No Content\r\nServer: ipc-explorer\r\nContent-Length: 0\r\n\r\n"


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


class _MessageReader:
    """Feeds the socket's bytes to httptools and collects whole messages as frames."""

    def __init__(self, sock: socket.socket, request: bool, peer: str):
        self.sock = sock
        self.peer = peer
        self.parser = (httptools.HttpRequestParser if request else httptools.HttpResponseParser)(
            self
        )
        self.done: deque[Frame] = deque()
        self.status = 0
        self._headers: dict[bytes, bytes] = {}
        self._body: list[bytes] = []
        self._buf = bytearray(262144)
        self._view = memoryview(self._buf)

    # httptools callbacks
    def on_message_begin(self) -> None:
        self._headers = {}
        self._body = []

    def on_header(self, name: bytes, value: bytes) -> None:
        self._headers[name.lower()] = value

    def on_body(self, body: bytes) -> None:
        self._body.append(body)

    def on_message_complete(self) -> None:
        headers = self._headers
        body = b"".join(self._body)
        if b"x-seq" not in headers:  # a 204 acknowledgement
            self.done.append(Frame(-1, 0, 0, 0, body))
            return
        try:
            frame = Frame(
                int(headers[b"x-seq"]),
                int(headers[b"x-sent-ns"]),
                int(headers[b"x-serialize-ns"]),
                int(headers[b"x-crc32"], 16),
                body,
            )
        except (KeyError, ValueError) as exc:
            raise TransportError(f"HTTP message without a valid envelope header: {exc}") from None
        self.done.append(frame)

    def next(self) -> Frame:
        while not self.done:
            try:
                n = self.sock.recv_into(self._buf)
            except ConnectionResetError:
                message = f"the HTTP {self.peer} reset the connection"
                raise ChannelClosed("ECONNRESET", message) from None
            if not n:
                raise ChannelClosed("EOF", f"the HTTP {self.peer} closed the connection")
            try:
                self.parser.feed_data(self._view[:n])
            except httptools.HttpParserError as exc:
                raise TransportError(f"malformed HTTP from the {self.peer}: {exc}") from None
        return self.done.popleft()


@register
class HttpTransport(Transport):
    name = "http"
    title = "HTTP/1.1 (loopback)"
    boundaries = "request"

    @classmethod
    def create(
        cls, options: TransportOptions, workdir: Path, tag: str, duplex: bool
    ) -> ChannelPlan:
        listener, port = tcp_listener(options, "HTTP port")
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
        address = (names["host"], names["port"])
        sock = open_connection(self.plan, self.role, socket.AF_INET, address, "HTTP server")
        # Head and body may go in separate segments; with Nagle on, delayed ACKs stall them.
        set_nodelay(sock, self.plan.options.nagle)
        self.sock = sock
        self._peer = "server" if self.role == "sender" else "client"
        self._host = f"{names['host']}:{names['port']}".encode()
        self._content_type = self.plan.options.content_type.encode()
        self._reader = _MessageReader(sock, request=self.role == "receiver", peer=self._peer)
        self._ack_pending = False

    # -- bytes -------------------------------------------------------------------------
    def _message_bytes(self, frame: Frame, request: bool) -> bytes:
        fields = (len(frame.payload), frame.seq, frame.t_send, frame.ser_ns, frame.crc)
        if request:
            head = _REQUEST_HEAD % (self._host, self._content_type, *fields)
        else:
            head = _RESPONSE_HEAD % (self._content_type, *fields)
        return head + frame.payload

    def _sendall(self, data: bytes) -> None:
        try:
            self.sock.sendall(data)
        except (BrokenPipeError, ConnectionResetError) as exc:
            name = "EPIPE" if isinstance(exc, BrokenPipeError) else "ECONNRESET"
            raise ChannelClosed(name, f"the HTTP {self._peer} is gone ({name})") from None

    # -- the interface -------------------------------------------------------------------
    def send(self, seq: int, ser_ns: int, crc: int, payload: bytes) -> int:
        self.limits.check(len(payload))
        if self._ack_pending:  # the 204 of the request before: one request at a time
            self._reader.next()
            self._ack_pending = False
        frame = Frame(seq, monotonic_ns(), ser_ns, crc, payload)
        data = self._message_bytes(frame, request=self.role == "sender")
        if self.plan.options.split_writes:  # the head, then the body, as http.server does
            head = len(data) - len(payload)
            self._sendall(data[:head])
            self._sendall(data[head:])
        else:
            self._sendall(data)
        # In stream the server answers 204 once it has the request; the client reads it
        # before its next request (not here), so that a request can be shown sitting in the
        # server's socket while the server is held (step mode).
        self._ack_pending = self.role == "sender" and not self.plan.duplex
        return len(data)

    def recv(self) -> Frame:
        frame = self._reader.next()
        if self.role == "receiver" and not self.plan.duplex:
            self._sendall(_NO_CONTENT)
        return frame

    def channel_fds(self) -> dict[str, int]:
        sock = getattr(self, "sock", None)
        return {"in": sock.fileno(), "out": sock.fileno()} if sock is not None else {}

    def close(self) -> None:
        sock = getattr(self, "sock", None)
        if sock is None:
            return
        # Take the last 204 first, so that closing sends FIN, not RST (unread data).
        if getattr(self, "_ack_pending", False):
            try:
                sock.settimeout(ACK_AT_CLOSE_S)
                self._reader.next()
            except (OSError, TransportError):
                pass
        sock.close()

    def wire_image(self, frame: Frame, forward: bool = True) -> tuple[bytes, list[Span]]:
        """The request (forward) or the echoing response carrying ``frame``."""
        data = self._message_bytes(frame, request=forward)
        return data, head_spans(data[: len(data) - len(frame.payload)])

    def kernel_object(self) -> str:
        names = self.plan.names
        nagle = "Nagle on" if self.plan.options.nagle else "TCP_NODELAY"
        return f"http://{names['host']}:{names['port']}/messages ({nagle}, keep-alive)"

    def framing_text(self) -> str:
        return (
            "HTTP/1.1 request/response: a request line and headers (the envelope as X-Seq, "
            "X-Sent-Ns, X-Serialize-Ns, X-CRC32; Content-Length) then the payload as the body"
        )
