"""Datagrams (unix-dgram, udp): one datagram per message, its first byte a kind and then a
u32 sequence number, so that a UDP echo is matched to its message. UDP may lose messages:
they are counted, never hidden."""

from __future__ import annotations

import socket
import struct
import time

from ipc_explorer.floor.protocol import WARMUP, say, sender_result

MECHANISMS = ("unix-dgram", "udp")

KIND_WARMUP, KIND_MESSAGE, KIND_END = b"W"[0], b"M"[0], b"E"[0]
SEQ = struct.Struct("<I")
UDP_MAX = 65507
#: UDP: an echo not back within this time is a loss; the receiver stops after this silence.
UDP_ECHO_TIMEOUT_S = 0.2
UDP_SILENCE_S = 0.5
UDP_END_MARKERS = 5


def wire_sizes(mechanism: str) -> tuple[int, int]:
    """Room for the kind and the sequence number, up to what one datagram can hold."""
    return SEQ.size + 1, (_unix_dgram_max() if mechanism == "unix-dgram" else UDP_MAX)


def _unix_dgram_max() -> int:
    """Linux refuses a Unix datagram longer than the send buffer minus 32 bytes (EMSGSIZE)."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as probe:
        return probe.getsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF) - 32


def _socket(mechanism: str, role: str, setup: dict) -> socket.socket:
    if mechanism == "unix-dgram":
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        if role == "receiver":
            sock.bind(setup["s2r"])
        else:
            sock.bind(setup["r2s"])  # a bound address, or the echoes have nowhere to go
            sock.connect(setup["s2r"])
        return sock
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    if role == "receiver":
        sock.bind(("127.0.0.1", 0))
    else:
        sock.connect(("127.0.0.1", setup["port"]))
    return sock


def _recv_timeout(sock: socket.socket, seconds: float) -> None:
    """SO_RCVTIMEO on a blocking socket: a timeout costs no extra poll(2) per recv.

    (socket.settimeout would poll before every recv; here a late datagram raises
    BlockingIOError.)
    """
    whole = int(seconds)
    timeval = struct.pack("ll", whole, int((seconds - whole) * 1e6))
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO, timeval)


def sender(mechanism: str, pingpong: bool, size: int, count: int, setup: dict) -> dict:
    sock = _socket(mechanism, "sender", setup)
    lossy = mechanism == "udp"
    if lossy:
        _recv_timeout(sock, UDP_ECHO_TIMEOUT_S)
    out = bytearray(size)
    back = bytearray(size)
    send, recv_into = sock.send, sock.recv_into
    pack_seq, unpack_seq = SEQ.pack_into, SEQ.unpack_from

    def round_trip(kind: int, seq: int) -> bool:
        """One datagram out, its own echo back (stale echoes of earlier losses are skipped)."""
        out[0] = kind
        pack_seq(out, 1, seq)
        send(out)
        while True:
            try:
                recv_into(back)
            except BlockingIOError:
                return False
            if back[0] == kind and unpack_seq(back, 1)[0] == seq:
                return True

    seq = 0
    while seq < WARMUP:
        seq += round_trip(KIND_WARMUP, seq)  # retried until it gets through
    out[0] = KIND_MESSAGE
    if not pingpong:
        t0 = time.monotonic_ns()
        for _ in range(count):
            send(out)  # one datagram per message
        t_end = time.monotonic_ns()
        completed = count
        rtts = None
    else:
        clock = time.perf_counter_ns
        rtts = []
        t0 = time.monotonic_ns()
        for seq in range(count):
            start = clock()
            if round_trip(KIND_MESSAGE, seq):
                rtts.append(clock() - start)
        t_end = time.monotonic_ns()
        completed = len(rtts)
    if lossy:
        _send_end_markers(sock)
    return sender_result(t0, t_end, rtts, completed)


def _send_end_markers(sock: socket.socket) -> None:
    """UDP may drop the last messages: tell the receiver it is over (it also has a timeout)."""
    for _ in range(UDP_END_MARKERS):
        try:
            sock.send(bytes([KIND_END]))
        except OSError:  # the receiver is already gone (ICMP port unreachable)
            return
        time.sleep(0.005)


def receiver(mechanism: str, pingpong: bool, size: int, count: int, setup: dict) -> dict:
    sock = _socket(mechanism, "receiver", setup)
    say({"ready": True, "port": sock.getsockname()[1] if mechanism == "udp" else None})
    lossy = mechanism == "udp"
    buf = bytearray(size)
    view = memoryview(buf)
    # Warm-up: echo until the first real message. No timeout here: the sender may still be
    # starting up.
    n, peer = sock.recvfrom_into(buf)
    sock.connect(peer)
    send, recv_into, now = sock.send, sock.recv_into, time.monotonic_ns
    while buf[0] == KIND_WARMUP:
        send(view[:n])
        n = recv_into(buf)
    if buf[0] != KIND_MESSAGE:
        return {"received": 0, "t_last_ns": None}
    received, t_last = 1, now()
    if pingpong:
        send(view[:n])
    if lossy:
        _recv_timeout(sock, UDP_SILENCE_S)
    # The receive time is taken per message: on UDP the last message is known only after
    # a marker or a silence.
    while received < count:
        try:
            n = recv_into(buf)
        except BlockingIOError:  # silence: the rest was lost
            break
        kind = buf[0]
        if kind == KIND_MESSAGE:
            received += 1
            t_last = now()
            if pingpong:
                send(view[:n])
        elif kind == KIND_WARMUP:  # a late retry of the warm-up
            send(view[:n])
        else:
            break
    return {"received": received, "t_last_ns": t_last}
