"""Byte streams (pipe, fifo, unix-stream, tcp): one write of a framed message, u32 LE length
+ body; the receiver reads in bulk and splits frames by their length prefix."""

from __future__ import annotations

import io
import socket
import time
from collections.abc import Callable

from ipc_explorer.floor.protocol import LEN, WARMUP, frame, say, sender_result

MECHANISMS = ("pipe", "fifo", "unix-stream", "tcp")


def wire_sizes(mechanism: str) -> tuple[int, int]:
    """The smallest and largest message this mechanism carries, in wire bytes."""
    return LEN.size, 1 << 30


def _ends(mechanism: str, role: str, setup: dict) -> tuple[Callable, Callable, list]:
    """Open this side of a byte stream: (recv_into, send, objects to keep alive).

    For fds, FileIO.readinto/write are one read(2)/write(2) each with no Python-level
    wrapper. A blocking pipe write is whole unless a signal interrupts it, and the only
    signal a child handles (SIGTERM) ends it anyway, so writes are not re-checked.
    """
    if mechanism == "pipe":
        fds = setup["fds"]
        rx_fd, tx_fd = (
            (fds["r2s_r"], fds["s2r_w"]) if role == "sender" else (fds["s2r_r"], fds["r2s_w"])
        )
        rx, tx = io.FileIO(rx_fd, "rb"), io.FileIO(tx_fd, "wb")
        if role == "receiver":
            say({"ready": True})
        return rx.readinto, tx.write, [rx, tx]
    if mechanism == "fifo":
        if role == "receiver":
            say({"ready": True})  # before open(): opening a FIFO waits for the other end
            rx = io.FileIO(setup["s2r"], "rb")
            tx = io.FileIO(setup["r2s"], "wb")
        else:
            tx = io.FileIO(setup["s2r"], "wb")
            rx = io.FileIO(setup["r2s"], "rb")
        return rx.readinto, tx.write, [rx, tx]
    family, address = (
        (socket.AF_UNIX, setup["s2r"]) if mechanism == "unix-stream" else (socket.AF_INET, None)
    )
    if role == "receiver":
        conn = accept_one(family, address)
    else:
        conn = socket.socket(family, socket.SOCK_STREAM)
        conn.connect(address or ("127.0.0.1", setup["port"]))
    if family == socket.AF_INET:
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return conn.recv_into, conn.sendall, [conn]


def accept_one(family: int, path: str | None) -> socket.socket:
    """Listen, tell the parent where (the TCP port is ephemeral), accept one connection."""
    with socket.socket(family, socket.SOCK_STREAM) as listener:
        listener.bind(path or ("127.0.0.1", 0))
        listener.listen(1)
        say({"ready": True, "port": None if path else listener.getsockname()[1]})
        conn, _ = listener.accept()
    return conn


def _read_exact(recv_into: Callable, view: memoryview) -> None:
    got, size = 0, len(view)
    while got < size:
        n = recv_into(view[got:])
        if not n:
            raise EOFError("the other side closed the stream")
        got += n


def sender(mechanism: str, pingpong: bool, size: int, count: int, setup: dict) -> dict:
    recv_into, send, _keep = _ends(mechanism, "sender", setup)
    message = frame(size)
    echo = memoryview(bytearray(size))
    for _ in range(WARMUP):
        send(message)
        _read_exact(recv_into, echo)
    if not pingpong:
        t0 = time.monotonic_ns()
        for _ in range(count):
            send(message)  # one write(2)/send(2) per message
        return sender_result(t0, time.monotonic_ns(), None, count)
    clock = time.perf_counter_ns
    rtts: list[int] = []
    t0 = time.monotonic_ns()
    for _ in range(count):
        start = clock()
        send(message)
        got = recv_into(echo)
        while got < size:  # a large echo may come back in pieces
            n = recv_into(echo[got:])
            if not n:
                raise EOFError("receiver closed the stream")
            got += n
        rtts.append(clock() - start)
    return sender_result(t0, time.monotonic_ns(), rtts, count)


def receiver(mechanism: str, pingpong: bool, size: int, count: int, setup: dict) -> dict:
    recv_into, send, _keep = _ends(mechanism, "receiver", setup)
    total = WARMUP + count
    echo_upto = total if pingpong else WARMUP
    capacity = max(1 << 20, 4 * size)
    buf = bytearray(capacity)
    view = memoryview(buf)
    unpack = LEN.unpack_from
    start = end = seen = 0
    while seen < total:
        if capacity - end < size:  # keep room for a whole frame after the unparsed bytes
            view[: end - start] = view[start:end]
            end -= start
            start = 0
        n = recv_into(view[end:])  # bulk: as many frames as the kernel has
        if not n:
            raise EOFError(f"sender closed the stream after {seen - WARMUP} messages")
        end += n
        while end - start >= 4:
            stop = start + 4 + unpack(buf, start)[0]
            if stop > end:
                break
            if seen < echo_upto:
                send(view[start:stop])
            seen += 1
            start = stop
        if start == end:
            start = end = 0
    return {"received": seen - WARMUP, "t_last_ns": time.monotonic_ns()}
