"""The child -> parent telemetry channel: batches of msgpack records, length-prefixed, on a pipe.

A child writes one record per flush (about 10 per second, plus one when its state changes), not
one per message, so that telemetry does not distort what it measures. Counts in a record are
cumulative (a lost record loses nothing); histograms carry only the buckets that changed.
"""

from __future__ import annotations

import os
import struct
import threading
from typing import Any

import msgpack

_LEN = struct.Struct("<I")
FLUSH_INTERVAL_NS = 100_000_000
#: Largest wire image shipped with a sample; bigger messages are truncated (and flagged).
SAMPLE_WIRE_CAP = 64 * 1024
MAX_RECORD = 64 * 1024 * 1024

#: Per-message stages, in the order a message goes through them.
STAGES = ("serialize", "transmit", "deserialize", "sync_wait")
#: Stages of some mechanisms only: a broker's publisher confirm (sender) and manual ack
#: (receiver); a new connection's TCP connect and TLS handshake (sender, HTTP without
#: keep-alive). "confirm", "connect" and "handshake" lie within "transmit" (which runs from
#: send to receipt).
EXTRA_STAGES = ("confirm", "ack", "connect", "handshake")
#: The extra stages the sender times (the rest are the receiver's).
SENDER_STAGES = ("confirm", "connect", "handshake")


class TelemetryWriter:
    """Writes records on the telemetry fd; safe to call from the loop and the status thread."""

    def __init__(self, fd: int):
        self._fd = fd
        self._lock = threading.Lock()
        self.broken = False

    def write(self, record: dict[str, Any]) -> None:
        if self.broken:
            return
        body = msgpack.packb(record, use_bin_type=True)
        data = _LEN.pack(len(body)) + body
        with self._lock:
            try:
                view = memoryview(data)
                while view:
                    view = view[os.write(self._fd, view) :]
            except OSError:
                # The parent is gone; the child notices through its control pipe or the signal.
                self.broken = True


class TelemetryDecoder:
    """Parent side: feed bytes as they come, take whole records out."""

    def __init__(self) -> None:
        self._buf = bytearray()

    def feed(self, data: bytes) -> list[dict[str, Any]]:
        self._buf += data
        out = []
        buf = self._buf
        pos = 0
        while len(buf) - pos >= 4:
            (n,) = _LEN.unpack_from(buf, pos)
            if n > MAX_RECORD:
                raise ValueError(f"telemetry record of {n} bytes: the stream is corrupt")
            if len(buf) - pos - 4 < n:
                break
            out.append(
                msgpack.unpackb(bytes(buf[pos + 4 : pos + 4 + n]), raw=False, strict_map_key=False)
            )
            pos += 4 + n
        if pos:
            del buf[:pos]
        return out
