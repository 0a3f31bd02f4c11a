"""HTTP/1.1 on one keep-alive TCP connection: a real ``POST /messages`` per message, answered
``204 No Content`` (stream) or ``200 OK`` echoing the body (ping-pong). No pipelining, so even
a stream is one request at a time."""

from __future__ import annotations

import socket
import time

from ipc_explorer.floor.protocol import WARMUP, FloorError, sender_result
from ipc_explorer.floor.streams import accept_one

MECHANISMS = ("http",)

HTTP_NO_CONTENT = b"HTTP/1.1 204 No Content\r\n\r\n"
HTTP_OK_HEAD = b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n"
HEAD_END = b"\r\n\r\n"


def wire_sizes(mechanism: str) -> tuple[int, int]:
    """The smallest request is an empty body after the longest head (a five-digit port)."""
    return len(request_head(65535) % 0), 1 << 30


def request_head(port: int, spaces: int = 1) -> bytes:
    """The request head, with ``%d`` left for Content-Length."""
    return b"POST /messages HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nContent-Length:%s%%d\r\n\r\n" % (
        port,
        b" " * spaces,
    )


def request(port: int, size: int) -> bytes:
    """A ``POST /messages`` request of exactly ``size`` bytes, head included.

    Content-Length's digit count grows with the body, so a few totals cannot be reached with
    one space after the colon; optional whitespace (RFC 9110 OWS) makes up the missing byte.
    """
    for spaces in (1, 2):
        head = request_head(port, spaces)
        for digits in range(1, 11):
            body = size - len(head % 0) + 1 - digits
            if body >= 0 and len(str(body)) == digits:
                return head % body + b"x" * body
    raise FloorError(f"no HTTP request is exactly {size} bytes long")


def _content_length(buf: bytearray, start: int, head_end: int) -> int:
    """The Content-Length of the head in buf[start:head_end] (0 when absent)."""
    head = buf[start:head_end].lower()
    at = head.find(b"\r\ncontent-length:")
    if at < 0:
        return 0
    value_end = head.find(b"\r\n", at + 2)
    return int(head[at + 17 : value_end if value_end >= 0 else len(head)])


def sender(mechanism: str, pingpong: bool, size: int, count: int, setup: dict) -> dict:
    conn = socket.create_connection(("127.0.0.1", setup["port"]))
    conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    message = request(setup["port"], size)
    buf = bytearray(size + 4096)
    view = memoryview(buf)
    send, recv_into, find = conn.sendall, conn.recv_into, buf.find
    expected = b"200" if pingpong else b"204"

    def exchange() -> None:
        """Send one request and read its whole response (HTTP/1.1: no pipelining)."""
        send(message)
        end = 0
        while True:
            n = recv_into(view[end:])
            if not n:
                raise EOFError("server closed the connection")
            end += n
            head_end = find(HEAD_END, 0, end)
            if head_end >= 0 and end >= head_end + 4 + _content_length(buf, 0, head_end):
                break
        if buf[9:12] != expected:
            raise FloorError(f"unexpected response {bytes(buf[:head_end])!r}")

    for _ in range(WARMUP):
        exchange()
    if not pingpong:  # still one request at a time: each waits for its 204
        t0 = time.monotonic_ns()
        for _ in range(count):
            exchange()
        return sender_result(t0, time.monotonic_ns(), None, count)
    clock = time.perf_counter_ns
    rtts: list[int] = []
    t0 = time.monotonic_ns()
    for _ in range(count):
        start = clock()
        exchange()
        rtts.append(clock() - start)
    return sender_result(t0, time.monotonic_ns(), rtts, count)


def receiver(mechanism: str, pingpong: bool, size: int, count: int, setup: dict) -> dict:
    conn = accept_one(socket.AF_INET, None)
    conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    total = WARMUP + count
    capacity = max(1 << 20, 4 * size)
    buf = bytearray(capacity)
    view = memoryview(buf)
    find, recv_into, sendall, sendmsg = buf.find, conn.recv_into, conn.sendall, conn.sendmsg
    start = end = seen = 0
    while seen < total:
        if capacity - end < size:
            view[: end - start] = view[start:end]
            end -= start
            start = 0
        n = recv_into(view[end:])
        if not n:
            raise EOFError(f"client closed the connection after {seen - WARMUP} requests")
        end += n
        while (head_end := find(HEAD_END, start, end)) >= 0:
            if not buf.startswith(b"POST /messages ", start):
                raise FloorError(f"not a POST /messages: {bytes(buf[start:head_end])!r}")
            body = head_end + 4
            stop = body + _content_length(buf, start, head_end)
            if stop > end:
                break
            if pingpong:  # head and echoed body in one sendmsg(2), body not copied
                sendmsg([HTTP_OK_HEAD % (stop - body), view[body:stop]])
            else:
                sendall(HTTP_NO_CONTENT)
            seen += 1
            start = stop
        if start == end:
            start = end = 0
    return {"received": seen - WARMUP, "t_last_ns": time.monotonic_ns()}
