"""The receiver's HTTP server: one poll over the listening socket and every connection.

A request that carries the envelope headers (X-Seq, X-Sent-Ns, X-Serialize-Ns, X-CRC32) is a
measured message, whichever connection it comes on (one kept alive, or a new one per request).
Any other client is served too, and never counted: a request without the envelope gets a short
JSON about the session, one that does not parse gets ``400 Bad Request`` and its connection is
closed, and the session goes on. TLS runs over memory BIOs (``tls.TlsLink``), so a client that
stalls in its handshake never blocks the loop.
"""

from __future__ import annotations

import json
import select
import socket
import ssl
from collections import deque
from collections.abc import Callable
from typing import Any

import httptools

from ipc_explorer.transports.base import ChannelClosed, Frame
from ipc_explorer.transports.tls import TlsLink

#: Foreign clients served at once; past it the newest is turned away.
MAX_CONNECTIONS = 64
_READ = 262144
_ENVELOPE = (b"x-seq", b"x-sent-ns", b"x-serialize-ns", b"x-crc32")


def simple_response(status: bytes, body: bytes, content_type: bytes) -> bytes:
    return (
        b"HTTP/1.1 %s\r\nServer: ipc-explorer\r\nContent-Type: %s\r\nContent-Length: %d\r\n"
        b"Connection: close\r\n\r\n%s" % (status, content_type, len(body), body)
    )


class ServerConnection:
    """One accepted connection: its parser, its TLS state, what it asked for."""

    def __init__(self, server: HttpServer, sock: socket.socket, link: TlsLink | None):
        self.server = server
        self.sock = sock
        self.link = link
        self.handshaking = link is not None
        #: The server has answered the ClientHello (what a held receiver may do, no more).
        self.hello_answered = False
        self.parser = httptools.HttpRequestParser(self)
        self.headers: dict[bytes, bytes] = {}
        self.body: list[bytes] = []
        self.url = b""
        #: A response for a foreign request, sent once the bytes fed so far are parsed.
        self.answer: bytes | None = None

    # httptools callbacks
    def on_message_begin(self) -> None:
        self.headers = {}
        self.body = []
        self.url = b""

    def on_url(self, url: bytes) -> None:
        self.url += url

    def on_header(self, name: bytes, value: bytes) -> None:
        self.headers[name.lower()] = value

    def on_body(self, body: bytes) -> None:
        self.body.append(body)

    def on_message_complete(self) -> None:
        headers = self.headers
        if all(name in headers for name in _ENVELOPE):
            try:
                frame = Frame(
                    int(headers[b"x-seq"]),
                    int(headers[b"x-sent-ns"]),
                    int(headers[b"x-serialize-ns"]),
                    int(headers[b"x-crc32"], 16),
                    b"".join(self.body),
                )
            except ValueError:
                self.answer = self.server.bad_request(b"the envelope headers are not numbers")
                return
            self.server.ready.append((self, frame))
            return
        self.answer = self.server.foreign_answer(self.parser.get_method(), self.url)

    def write(self, data: bytes) -> int:
        """Send ``data`` (in TLS records on https); the bytes that went on the wire."""
        if self.link is not None:
            data = self.link.encrypt(data)
        self.sock.sendall(data)
        return len(data)


class HttpServer:
    """Serves every connection on the listener; ``next_frame`` blocks for a measured one."""

    def __init__(
        self,
        listener: socket.socket,
        tls: ssl.SSLContext | None,
        close_each: bool,
        tune: Callable[[socket.socket], None],
        about: Callable[[], dict[str, Any]],
    ):
        self.listener = listener
        self.tls = tls
        self.close_each = close_each
        self.tune = tune
        self.about = about
        self.poller = select.epoll()
        self.conns: dict[int, ServerConnection] = {}
        self.ready: deque[tuple[ServerConnection, Frame]] = deque()
        #: The connection of the last measured request: where its response goes.
        self.current: ServerConnection | None = None
        self.first: ServerConnection | None = None
        self.sender_gone = False
        self.foreign = 0
        self.bad = 0
        self.accepted = 0
        self._buf = bytearray(_READ)
        self._view = memoryview(self._buf)

    def start(self, accept_first: bool) -> None:
        """Listen from now on; with ``accept_first`` (keep-alive), first accept the sender's
        connection and complete its handshake, blocking, as the channel's setup."""
        if accept_first:
            sock, _ = self.listener.accept()
            conn = self._adopt(sock)
            while conn.handshaking and conn.sock.fileno() >= 0:
                self._read(conn)
            self.first = conn
        self.listener.setblocking(False)
        self.poller.register(self.listener.fileno(), select.EPOLLIN)

    # -- the loop ------------------------------------------------------------------------
    def next_frame(self) -> Frame:
        ready = self.ready
        while not ready:
            if self.sender_gone:
                raise ChannelClosed("EOF", "the HTTP client closed the connection")
            for fd, _ in self.poller.poll():
                if fd == self.listener.fileno():
                    self._accept()
                else:
                    conn = self.conns.get(fd)
                    if conn is not None:
                        self._read(conn)
        conn, frame = ready.popleft()
        self.current = conn
        return frame

    def reply(self, data: bytes) -> int:
        """The response to the last measured request (closing its connection when each
        request has its own); the bytes that went on the wire."""
        conn = self.current
        if conn is None:
            return 0
        try:
            written = conn.write(data)
        except (BrokenPipeError, ConnectionResetError) as exc:
            self._drop(conn)
            name = "EPIPE" if isinstance(exc, BrokenPipeError) else "ECONNRESET"
            raise ChannelClosed(name, f"the HTTP client is gone ({name})") from None
        if self.close_each:
            self._drop(conn)
        return written

    def answer_hellos(self) -> None:
        """While the loop is held: accept, and answer each ClientHello (so that a client's
        connect and handshake can finish), reading nothing after it."""
        for fd, _ in self.poller.poll(0):
            if fd == self.listener.fileno():
                self._accept()
            else:
                conn = self.conns.get(fd)
                if conn is not None and conn.handshaking and not conn.hello_answered:
                    self._read(conn)

    def _accept(self) -> None:
        try:
            sock, _ = self.listener.accept()
        except (BlockingIOError, ConnectionAbortedError):
            return
        if len(self.conns) >= MAX_CONNECTIONS:
            sock.close()
            return
        self._adopt(sock)

    def _adopt(self, sock: socket.socket) -> ServerConnection:
        sock.setblocking(True)
        self.tune(sock)
        link = TlsLink(self.tls, server_side=True) if self.tls is not None else None
        conn = ServerConnection(self, sock, link)
        self.conns[sock.fileno()] = conn
        self.poller.register(sock.fileno(), select.EPOLLIN)
        self.accepted += 1
        return conn

    def _read(self, conn: ServerConnection) -> None:
        """Take what the connection has (it is readable: no wait) and act on it."""
        try:
            if conn.link is None:
                n = conn.sock.recv_into(self._buf)
                data: bytes | memoryview = self._view[:n]
            else:
                raw = conn.sock.recv(_READ)
                n = len(raw)
                data = self._tls_in(conn, raw) if n else b""
        except (ConnectionResetError, ssl.SSLError, OSError):
            n, data = 0, b""
        if not n or conn.sock.fileno() < 0:
            self._gone(conn)
            return
        if not data:
            return
        try:
            conn.parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            conn.answer = self.bad_request(b"protocol upgrades are not served here")
        except httptools.HttpParserError as exc:
            conn.answer = self.bad_request(str(exc).encode())
        if conn.answer is not None:
            try:
                conn.write(conn.answer)
            except OSError:
                pass
            self._drop(conn)

    def _tls_in(self, conn: ServerConnection, raw: bytes) -> bytes:
        link = conn.link
        assert link is not None
        link.incoming.write(raw)
        if conn.handshaking:
            try:
                conn.handshaking = not link.step_handshake()
            except ssl.SSLError:
                self._flush(conn)  # the alert, where TLS has one
                raise
        data = link.decrypt(b"") if not conn.handshaking else b""
        if self._flush(conn):
            conn.hello_answered = True
        return data

    def _flush(self, conn: ServerConnection) -> bool:
        """Send what TLS has to say; whether there was anything."""
        assert conn.link is not None
        out = conn.link.take_output()
        if out:
            try:
                conn.sock.sendall(out)
            except OSError:
                pass
        return bool(out)

    def _gone(self, conn: ServerConnection) -> None:
        """EOF or reset: the sender's kept-alive connection ending is the peer gone (another
        client's, even one that sent an envelope, is only that client gone)."""
        if conn is self.first:
            self.sender_gone = True
        self._drop(conn)

    def _drop(self, conn: ServerConnection) -> None:
        fd = conn.sock.fileno()
        if self.conns.get(fd) is conn:
            del self.conns[fd]
            self.poller.unregister(fd)
        conn.sock.close()

    # -- answers to clients that are not the sender ----------------------------------------
    def bad_request(self, why: bytes) -> bytes:
        self.bad += 1
        body = b"malformed request: " + why + b"\n"
        return simple_response(b"400 Bad Request", body, b"text/plain")

    def foreign_answer(self, method: bytes, url: bytes) -> bytes:
        """A client that is not the sender: GET (or HEAD) has a short JSON about the session;
        any other request without the envelope is one the server cannot take (400)."""
        if method not in (b"GET", b"HEAD"):
            return self.bad_request(
                b"a message needs the X-Seq, X-Sent-Ns, X-Serialize-Ns and X-CRC32 headers"
            )
        self.foreign += 1
        about = {
            **self.about(),
            "you_asked": f"{method.decode('latin-1')} {url.decode('latin-1')}",
            "messages": "POST /messages with X-Seq, X-Sent-Ns, X-Serialize-Ns and X-CRC32 headers",
        }
        body = json.dumps(about).encode() + b"\n"
        answer = simple_response(b"200 OK", body, b"application/json")
        return answer[: len(answer) - len(body)] if method == b"HEAD" else answer

    def fileno_of_first(self) -> int | None:
        first = self.first
        return first.sock.fileno() if first is not None and first.sock.fileno() >= 0 else None

    def close(self) -> None:
        for conn in list(self.conns.values()):
            conn.sock.close()
        self.conns.clear()
        self.poller.close()
        self.listener.close()
