"""HTTP/1.1 over loopback TCP: keep-alive, ``POST /messages``, real request line and headers.

The envelope travels as headers (X-Seq, X-Sent-Ns, X-Serialize-Ns, X-CRC32) and the payload as
the body, so the bytes panel shows what HTTP costs: a head of a couple of hundred bytes around
every payload, and a parse on both sides. In stream the server answers ``204 No Content`` at
once; in ping-pong ``200 OK`` echoes the body.

Heads are written here, byte for byte, so every byte on the wire is known; both sides parse with
httptools (the llhttp parser that uvicorn uses), so the parse cost shown is that of a real
Python HTTP stack, not of a pure-Python parser that would dwarf the mechanism. The variants
(``http-close``: a new connection per request; ``https``, ``https-close``: TLS 1.3) are
subclasses that turn two switches, ``per_request`` and ``secure``; the receiver's server, which
answers any other client too, is in ``http_server``.
"""

from __future__ import annotations

import socket
import ssl
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar

import httptools

from ipc_explorer.codecs.base import Span
from ipc_explorer.kernel.facts import Facts
from ipc_explorer.kernel.net import socket_rows
from ipc_explorer.transports import register
from ipc_explorer.transports.base import (
    MAX_STREAM_MESSAGE,
    ChannelClosed,
    ChannelEnd,
    ChannelPlan,
    Frame,
    Limits,
    Transport,
    TransportError,
    TransportOptions,
    monotonic_ns,
)
from ipc_explorer.transports.http_server import HttpServer
from ipc_explorer.transports.sockets import set_nodelay, socket_buffer, tcp_listener
from ipc_explorer.transports.tls import TLS_VERSION, TlsLink, client_handshake

#: A typical head (request line and headers) size, for the limit check before the run.
HEAD_ALLOWANCE = 256
#: How long a closing client waits for the 204 of its last request.
ACK_AT_CLOSE_S = 0.2
_READ = 262144

_REQUEST_HEAD = (
    b"POST /messages HTTP/1.1\r\nHost: %%s\r\n%sContent-Type: %%s\r\nContent-Length: %%d\r\n"
    b"X-Seq: %%d\r\nX-Sent-Ns: %%d\r\nX-Serialize-Ns: %%d\r\nX-CRC32: %%08x\r\n\r\n"
)
_RESPONSE_HEAD = (
    b"HTTP/1.1 200 OK\r\nServer: ipc-explorer\r\n%sContent-Type: %%s\r\nContent-Length: %%d\r\n"
    b"X-Seq: %%d\r\nX-Sent-Ns: %%d\r\nX-Serialize-Ns: %%d\r\nX-CRC32: %%08x\r\n\r\n"
)
_NO_CONTENT = b"HTTP/1.1 204 No Content\r\nServer: ipc-explorer\r\n%sContent-Length: 0\r\n\r\n"


def heads(close: bool) -> tuple[bytes, bytes, bytes]:
    """The request and response templates and the 204, with ``Connection: close`` or not."""
    line = b"Connection: close\r\n" if close else b""
    return _REQUEST_HEAD % line, _RESPONSE_HEAD % line, _NO_CONTENT % line


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


class _ResponseReader:
    """The client's side: feeds the connection's bytes to httptools, collects whole responses
    as frames (a 204 as a frame with seq -1)."""

    def __init__(self, read: Callable[[], bytes | memoryview]):
        self.read = read
        self.parser = httptools.HttpResponseParser(self)
        self.done: deque[Frame] = deque()
        self._headers: dict[bytes, bytes] = {}
        self._body: list[bytes] = []

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
            data = self.read()
            try:
                self.parser.feed_data(data)
            except httptools.HttpParserError as exc:
                raise TransportError(f"malformed HTTP from the server: {exc}") from None
        return self.done.popleft()


@register
class HttpTransport(Transport):
    name = "http"
    title = "HTTP/1.1 (loopback)"
    boundaries = "request"
    scheme: ClassVar[str] = "http"
    #: A new TCP connection for every request (``Connection: close``), accepted each time.
    per_request: ClassVar[bool] = False
    #: TLS 1.3 over the connection (https).
    secure: ClassVar[bool] = False

    @classmethod
    def create(
        cls, options: TransportOptions, workdir: Path, tag: str, duplex: bool
    ) -> ChannelPlan:
        listener, port = tcp_listener(options, f"{cls.scheme.upper()} port")
        buffer = socket_buffer(listener)
        try:
            files = cls.channel_files(workdir, options.host)
        except BaseException:
            listener.close()
            raise
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
            names={"host": options.host, "port": port, **files},
            fds={"sender": {}, "receiver": {"listen": listener.detach()}},
        )

    @classmethod
    def channel_files(cls, workdir: Path, host: str) -> dict[str, str]:
        """Files the channel needs in the session's private dir (certificates), by name."""
        return {}

    def server_tls(self) -> ssl.SSLContext | None:
        return None

    def client_tls(self) -> ssl.SSLContext | None:
        return None

    # -- opening -------------------------------------------------------------------------
    def open(self) -> None:
        names = self.plan.names
        self._host = f"{names['host']}:{names['port']}".encode()
        self._content_type = self.plan.options.content_type.encode()
        self._request_head, self._response_head, self._no_content = heads(self.per_request)
        self._ack_pending = False
        self.sock: socket.socket | None = None
        self._link: TlsLink | None = None
        self._session: ssl.SSLSession | None = None
        # What the sender put on the wire, split; connections and handshakes it made.
        self.head_bytes = self.body_bytes = self.tls_bytes = 0
        self.connections = self.handshakes = self.resumptions = 0
        if self.role == "receiver":
            listener = socket.socket(fileno=self.plan.fds["receiver"]["listen"])
            self.server: HttpServer | None = HttpServer(
                listener, self.server_tls(), self.per_request, self._tune, self._about
            )
            self.server.start(accept_first=not self.per_request)
            return
        self.server = None
        self._tls = self.client_tls()
        self._buf = bytearray(_READ)
        self._view = memoryview(self._buf)
        if not self.per_request:
            self._connect()

    def _tune(self, sock: socket.socket) -> None:
        # Head and body may go in separate segments; with Nagle on, delayed ACKs stall them.
        set_nodelay(sock, self.plan.options.nagle)

    def _about(self) -> dict[str, Any]:
        return {"service": "ipc-explorer", "mechanism": self.name, "framing": self.framing_text()}

    def _connect(self) -> int:
        """A new connection to the server, and its TLS handshake; the bytes this wrote."""
        names = self.plan.names
        t0 = monotonic_ns()
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            sock.connect((names["host"], names["port"]))
        except OSError as exc:
            sock.close()
            raise TransportError(f"cannot connect to the HTTP server: {exc.strerror}") from None
        self._tune(sock)
        t1 = monotonic_ns()
        self.sock = sock
        self.connections += 1
        self.last_stage_ns["connect"] = t1 - t0
        written = 0
        if self._tls is not None:
            link = self._link = TlsLink(self._tls, False, names["host"], self._session)
            try:
                written = client_handshake(sock, link, names.get("ca_file", ""), names["host"])
            except (TransportError, OSError):
                sock.close()
                raise
            self.handshakes += 1
            self.resumptions += link.obj.session_reused
            self.last_stage_ns["handshake"] = monotonic_ns() - t1
        self._reader = _ResponseReader(self._read_plain if self._link is None else self._read_tls)
        return written

    def _read_plain(self) -> memoryview:
        assert self.sock is not None
        try:
            n = self.sock.recv_into(self._buf)
        except ConnectionResetError:
            raise ChannelClosed("ECONNRESET", "the HTTP server reset the connection") from None
        if not n:
            raise ChannelClosed("EOF", "the HTTP server closed the connection")
        return self._view[:n]

    def _read_tls(self) -> bytes:
        assert self.sock is not None and self._link is not None
        try:
            raw = self.sock.recv(_READ)
        except ConnectionResetError:
            raise ChannelClosed("ECONNRESET", "the HTTPS server reset the connection") from None
        if not raw:
            raise ChannelClosed("EOF", "the HTTPS server closed the connection")
        try:
            return self._link.decrypt(raw)
        except ssl.SSLError as exc:
            raise TransportError(f"TLS error from the HTTPS server: {exc}") from None

    def _end_connection(self) -> None:
        """A response has come on a connection of one request: keep the TLS session (to
        resume it), read to the server's close (the server closes first, as HTTP servers do,
        so its side keeps the TIME_WAIT), close ours."""
        sock = self.sock
        if sock is None:
            return
        if self._link is not None:
            self._session = self._link.obj.session
        try:
            while True:
                raw = sock.recv(_READ)
                if not raw:
                    break
                if self._link is not None:
                    self._link.decrypt(raw)  # tickets that came late, the close alert
        except (OSError, ssl.SSLError):
            pass
        sock.close()
        self.sock = self._link = None

    # -- bytes -------------------------------------------------------------------------
    def _head(self, frame: Frame, request: bool) -> bytes:
        fields = (len(frame.payload), frame.seq, frame.t_send, frame.ser_ns, frame.crc)
        if request:
            return self._request_head % (self._host, self._content_type, *fields)
        return self._response_head % (self._content_type, *fields)

    def _write(self, head: bytes, payload: bytes) -> int:
        """Head and body to the server, in one write (or two with split_writes); the bytes
        that went on the wire (TLS records on https)."""
        sock = self.sock
        assert sock is not None
        parts = (head, payload) if self.plan.options.split_writes else (head + payload,)
        written = 0
        try:
            for part in parts:
                if self._link is not None:
                    part = self._link.encrypt(part)
                sock.sendall(part)
                written += len(part)
        except (BrokenPipeError, ConnectionResetError) as exc:
            name = "EPIPE" if isinstance(exc, BrokenPipeError) else "ECONNRESET"
            raise ChannelClosed(name, f"the HTTP server is gone ({name})") from None
        return written

    # -- the interface -------------------------------------------------------------------
    def send(self, seq: int, ser_ns: int, crc: int, payload: bytes) -> int:
        self.limits.check(len(payload))
        if self.server is not None:  # the receiver's echo (ping-pong)
            frame = Frame(seq, monotonic_ns(), ser_ns, crc, payload)
            return self.server.reply(self._head(frame, request=False) + payload)
        if self._ack_pending:  # the 204 of the request before: one request at a time
            self._reader.next()
            self._ack_pending = False
            if self.per_request:
                self._end_connection()
        t_send = monotonic_ns()  # a new connection and its handshake are part of the send
        written = self._connect() if self.per_request else 0
        head = self._head(Frame(seq, t_send, ser_ns, crc, payload), request=True)
        written += self._write(head, payload)
        self.head_bytes += len(head)
        self.body_bytes += len(payload)
        self.tls_bytes += written - len(head) - len(payload)
        # In stream the server answers 204 once it has the request; the client reads it
        # before its next request (not here), so that a request can be shown sitting in the
        # server's socket while the server is held (step mode).
        self._ack_pending = not self.plan.duplex
        return written

    def recv(self) -> Frame:
        if self.server is not None:
            frame = self.server.next_frame()
            if not self.plan.duplex:
                self.server.reply(self._no_content)
            return frame
        frame = self._reader.next()  # the echo
        if self.per_request:
            self._end_connection()
        return frame

    def keep_alive(self) -> None:
        """A held receiver still answers a client's ClientHello (so that a send, whose
        connect and handshake are part of it, can finish), and reads nothing more."""
        if self.server is not None:
            self.server.answer_hellos()

    def channel_fds(self) -> dict[str, int]:
        if self.per_request:
            return {}  # a connection per request: the kernel is read by port instead
        server = getattr(self, "server", None)
        fd = server.fileno_of_first() if server is not None else None
        sock = getattr(self, "sock", None)
        if fd is None and sock is not None:
            fd = sock.fileno()
        return {"in": fd, "out": fd} if fd is not None else {}

    @classmethod
    def kernel_facts(cls, plan: ChannelPlan, ends: dict[str, ChannelEnd]) -> Facts:
        """The server's end of the sender's connection when the receiver has said which it
        is; until then (a TLS handshake still going) and with a connection per request, every
        connection of the server's port, from /proc/net/tcp."""
        receiver = ends.get("receiver")
        if not cls.per_request and receiver is not None and "in" in receiver.fds:
            return super().kernel_facts(plan, ends)
        return _server_side_facts(plan.names["port"])

    def live_state(self) -> dict[str, Any]:
        server = getattr(self, "server", None)
        if server is not None:
            return {
                "connections_accepted": server.accepted,
                "other_clients_served": server.foreign,
                "bad_requests": server.bad,
            }
        if not hasattr(self, "head_bytes"):
            return {}
        live: dict[str, Any] = {
            "wire_split": {
                "headers": self.head_bytes,
                "body": self.body_bytes,
                "tls": self.tls_bytes,
            },
            "connections": self.connections,
        }
        if self.secure:
            live.update(
                handshakes=self.handshakes, resumptions=self.resumptions, tls_version=TLS_VERSION
            )
        return live

    def close(self) -> None:
        server = getattr(self, "server", None)
        if server is not None:
            server.close()
            return
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
        """The request (forward) or the echoing response carrying ``frame`` (on https, the
        plaintext inside the TLS records)."""
        if not hasattr(self, "_request_head"):
            self._request_head, self._response_head, self._no_content = heads(self.per_request)
            names = self.plan.names
            self._host = f"{names['host']}:{names['port']}".encode()
            self._content_type = self.plan.options.content_type.encode()
        data = self._head(frame, request=forward) + frame.payload
        return data, head_spans(data[: len(data) - len(frame.payload)])

    def kernel_object(self) -> str:
        names = self.plan.names
        nagle = "Nagle on" if self.plan.options.nagle else "TCP_NODELAY"
        reuse = "a connection per request" if self.per_request else "keep-alive"
        url = f"{self.scheme}://{names['host']}:{names['port']}/messages"
        return f"{url} ({nagle}, {reuse})"

    def framing_text(self) -> str:
        text = (
            "HTTP/1.1 request/response: a request line and headers (the envelope as X-Seq, "
            "X-Sent-Ns, X-Serialize-Ns, X-CRC32; Content-Length) then the payload as the body"
        )
        if self.per_request:
            text += "; Connection: close, a new TCP connection for every request"
        return text


def _server_side_facts(port: int) -> Facts:
    """Bytes waiting in the server's connections on ``port``, accepted or not yet: the rows of
    /proc/net/tcp whose local port is the server's (the listener's row aside)."""
    facts = Facts()
    queued = 0
    rows = 0
    suffix = f":{port:04X}"
    for row in socket_rows("tcp"):
        if row["local"].endswith(suffix) and row["state"] != "LISTEN":
            queued += row["rx_queue"]
            rows += row["state"] == "ESTABLISHED"
    where = f"/proc/net/tcp, rx_queue of the server's connections on port {port}"
    facts.add("queued_bytes", queued, where)
    facts.add("server_connections_open", rows, f"/proc/net/tcp, ESTABLISHED on port {port}")
    return facts
