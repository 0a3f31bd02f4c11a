"""POSIX message queues: one queue message per message (the queue keeps boundaries, so no
length prefix); default queues hold 10 messages of 8192 bytes at most."""

from __future__ import annotations

import time

import posix_ipc

from ipc_explorer.floor.protocol import WARMUP, say, sender_result

MECHANISMS = ("mq",)


def wire_sizes(mechanism: str) -> tuple[int, int]:
    """Up to the largest message a default queue accepts."""
    return 1, posix_ipc.QUEUE_MESSAGE_SIZE_MAX_DEFAULT


def sender(mechanism: str, pingpong: bool, size: int, count: int, setup: dict) -> dict:
    out_queue, back_queue = (posix_ipc.MessageQueue(name) for name in setup["queues"])
    send, receive = out_queue.send, back_queue.receive
    message = b"\xa5" * size
    for _ in range(WARMUP):
        send(message)
        receive()
    if not pingpong:
        t0 = time.monotonic_ns()
        for _ in range(count):
            send(message)
        return sender_result(t0, time.monotonic_ns(), None, count)
    clock = time.perf_counter_ns
    rtts: list[int] = []
    t0 = time.monotonic_ns()
    for _ in range(count):
        start = clock()
        send(message)
        receive()
        rtts.append(clock() - start)
    return sender_result(t0, time.monotonic_ns(), rtts, count)


def receiver(mechanism: str, pingpong: bool, size: int, count: int, setup: dict) -> dict:
    in_queue, back_queue = (posix_ipc.MessageQueue(name) for name in setup["queues"])
    say({"ready": True})
    receive, send = in_queue.receive, back_queue.send
    for _ in range(WARMUP):
        send(receive()[0])
    if pingpong:
        for _ in range(count):
            send(receive()[0])
    else:
        for _ in range(count):
            receive()
    return {"received": count, "t_last_ns": time.monotonic_ns()}
