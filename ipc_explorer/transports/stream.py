"""Framing shared by the byte-stream mechanisms (pipe, FIFO, Unix stream socket, TCP).

A byte stream has no message boundaries, so each message goes as one write of a 28-byte header
(u32 length of what follows, then the envelope) and the payload. The reader takes whatever the
kernel has in one bulk read and cuts frames out of its buffer, as any real protocol would.
"""

from __future__ import annotations

import errno
import os
import socket
import struct
from collections.abc import Callable

from ipc_explorer.codecs.base import Span
from ipc_explorer.transports.base import (
    ENVELOPE,
    LENGTH_PREFIX,
    MAX_STREAM_MESSAGE,
    ChannelClosed,
    Frame,
    Limits,
    Transport,
    TransportError,
    envelope_spans,
    monotonic_ns,
)

#: The length prefix (what follows: envelope + payload), then the envelope, packed in one go.
STREAM_HEADER = struct.Struct("<I" + ENVELOPE.format.lstrip("<"))
STREAM_OVERHEAD = STREAM_HEADER.size
#: A module constant, not an attribute lookup, on the receiver's per-message path.
ENVELOPE_SIZE = ENVELOPE.size
_unpack_header = STREAM_HEADER.unpack_from
_READ_CHUNK = 256 * 1024


def stream_limits(buffer_bytes: int | None, what: str) -> Limits:
    return Limits(
        max_wire=MAX_STREAM_MESSAGE,
        overhead=STREAM_OVERHEAD,
        limit_text=(
            f"ipc-explorer caps a message on a {what} at {MAX_STREAM_MESSAGE} bytes "
            "(a frame is read into memory whole)"
        ),
        buffer_bytes=buffer_bytes,
    )


def closed_error(exc: OSError, peer: str) -> ChannelClosed:
    """Turn EPIPE/ECONNRESET into the error the user sees."""
    name = errno.errorcode.get(exc.errno or 0, "EIO")
    return ChannelClosed(name, f"the {peer} is gone: {name} ({os.strerror(exc.errno or 0)})")


class FrameReader:
    """Cuts frames out of a byte stream read in bulk.

    The common case (a whole frame already in the buffer) is a handful of operations: this
    runs once per message on the receiver, so it is kept tight.
    """

    def __init__(self, read_into: Callable[[memoryview], int], peer: str):
        self._read_into = read_into
        self._peer = peer
        self._buf = bytearray(_READ_CHUNK)
        self._view = memoryview(self._buf)
        self._start = 0
        self._end = 0

    def read_frame(self) -> Frame:
        start = self._start
        if self._end - start >= STREAM_OVERHEAD:
            length, seq, t_send, ser_ns, crc = _unpack_header(self._buf, start)
            stop = start + 4 + length
            if stop <= self._end and length >= ENVELOPE_SIZE:
                self._start = stop
                return Frame(
                    seq, t_send, ser_ns, crc, self._view[start + STREAM_OVERHEAD : stop].tobytes()
                )
        return self._read_slow()

    def read_batch(self) -> list[Frame]:
        """Every whole frame in the buffer, reading (once, blocking) only if there is none."""
        first = self.read_frame()
        frames = [first]
        buf, view, end = self._buf, self._view, self._end
        start = self._start
        while end - start >= STREAM_OVERHEAD:
            length, seq, t_send, ser_ns, crc = _unpack_header(buf, start)
            stop = start + 4 + length
            if stop > end or length < ENVELOPE_SIZE:
                break
            frames.append(
                Frame(seq, t_send, ser_ns, crc, view[start + STREAM_OVERHEAD : stop].tobytes())
            )
            start = stop
        self._start = start
        return frames

    def _read_slow(self) -> Frame:
        while True:
            avail = self._end - self._start
            if avail >= STREAM_OVERHEAD:
                (length,) = LENGTH_PREFIX.unpack_from(self._buf, self._start)
                if length < ENVELOPE_SIZE or length + 4 > MAX_STREAM_MESSAGE:
                    raise TransportError(
                        f"corrupt stream: frame length {length} at buffer offset {self._start}"
                    )
                need = length + 4
                if avail >= need:
                    return self.read_frame()
            else:
                need = STREAM_OVERHEAD
            self._fill(need)

    def _fill(self, need: int) -> None:
        """Read more, first making room for a frame of ``need`` bytes."""
        avail = self._end - self._start
        if avail == 0:
            self._start = self._end = 0
        elif len(self._buf) - self._start < need or self._end == len(self._buf):
            if need > len(self._buf):
                grown = bytearray(max(need, _READ_CHUNK))
                grown[:avail] = self._buf[self._start : self._end]
                self._buf = grown
                self._view = memoryview(grown)
            else:
                self._buf[:avail] = self._buf[self._start : self._end]
            self._start, self._end = 0, avail
        try:
            got = self._read_into(self._view[self._end :])
        except (ConnectionResetError, BrokenPipeError) as exc:
            raise closed_error(exc, self._peer) from None
        if got == 0:
            raise ChannelClosed("EOF", f"the {self._peer} closed its end (EOF)")
        self._end += got


def fd_writer(fd: int, peer: str) -> Callable[[bytes, bytes], None]:
    writev = os.writev

    def write(header: bytes, payload: bytes) -> None:
        try:
            n = writev(fd, (header, payload))
            total = len(header) + len(payload)
            if n < total:
                rest = memoryview(header + payload)[n:]
                while rest:
                    rest = rest[os.write(fd, rest) :]
        except BrokenPipeError as exc:
            raise closed_error(exc, peer) from None

    return write


def socket_writer(
    sock: socket.socket, peer: str, split: bool = False
) -> Callable[[bytes, bytes], None]:
    """One sendmsg(2) of header and payload together, or with ``split`` two sends, header
    first, as many protocols write (the second waits for an ACK when Nagle is on)."""
    sendmsg = sock.sendmsg

    def write(header: bytes, payload: bytes) -> None:
        try:
            n = sendmsg((header, payload))
            total = len(header) + len(payload)
            if n < total:
                sock.sendall(memoryview(header + payload)[n:])
        except (BrokenPipeError, ConnectionResetError) as exc:
            raise closed_error(exc, peer) from None

    def write_in_two(header: bytes, payload: bytes) -> None:
        try:
            sock.sendall(header)
            sock.sendall(payload)
        except (BrokenPipeError, ConnectionResetError) as exc:
            raise closed_error(exc, peer) from None

    return write_in_two if split else write


class ByteStreamTransport(Transport):
    """Base of the framed byte-stream mechanisms: subclasses set ``_write`` and ``_reader``."""

    boundaries = "stream"
    _write: Callable[[bytes, bytes], None]
    _reader: FrameReader

    def send(self, seq: int, ser_ns: int, crc: int, payload: bytes) -> int:
        header = STREAM_HEADER.pack(len(payload) + ENVELOPE_SIZE, seq, monotonic_ns(), ser_ns, crc)
        self._write(header, payload)
        return len(payload) + STREAM_OVERHEAD

    def recv(self) -> Frame:
        return self._reader.read_frame()

    def recv_batch(self) -> list[Frame]:
        return self._reader.read_batch()

    @classmethod
    def wire_split(cls, wire_bytes: int, payload_bytes: int) -> dict[str, int] | None:
        """Every byte that is not payload is a frame's header (length prefix and envelope)."""
        return {"headers": wire_bytes - payload_bytes, "body": payload_bytes, "tls": 0}

    def wire_image(self, frame: Frame, forward: bool = True) -> tuple[bytes, list[Span]]:
        header_length = len(frame.payload) + ENVELOPE_SIZE
        header = STREAM_HEADER.pack(header_length, frame.seq, frame.t_send, frame.ser_ns, frame.crc)
        spans = [
            Span(0, 4, "frame.length", "framing", f"length u32 {header_length}"),
            *envelope_spans(4, frame),
        ]
        return header + frame.payload, spans

    def framing_text(self) -> str:
        return (
            "byte stream, no boundaries: each message is one write of a u32 length prefix, "
            f"a {ENVELOPE_SIZE}-byte envelope (seq, t_send, serialize ns, crc32) and the payload"
        )
