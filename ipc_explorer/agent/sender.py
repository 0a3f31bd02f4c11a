"""The sender: serializes messages (generated or injected) and sends them, as fast as the rate
allows (stream) or one round trip at a time (ping-pong), timing each stage."""

from __future__ import annotations

import time
from typing import Any
from zlib import crc32

from ipc_explorer.agent.runtime import ChildRuntime
from ipc_explorer.codecs import CodecError, get_codec
from ipc_explorer.codecs.sample import sample_payload
from ipc_explorer.transports import Frame, MessageTooLarge, RecvTimeout

monotonic_ns = time.monotonic_ns


class SenderCounters:
    __slots__ = ("sent", "payload_bytes", "wire_bytes", "echoed", "echo_corrupt", "timeouts",
                 "late", "injected", "rejected")

    def __init__(self) -> None:
        for name in self.__slots__:
            setattr(self, name, 0)


class Sender(ChildRuntime):
    def run(self) -> None:
        channel = self.open_channel()
        cfg = self.config
        codec = get_codec(cfg["format"])
        encode = codec.encode
        size: int = cfg["size"]
        count: int | None = cfg.get("count")
        pingpong = cfg["pattern"] == "ping-pong"
        limits = channel.limits
        send = channel.send
        recv = channel.recv
        h_ser = self.hist("serialize")
        h_lat = self.hist("rtt")
        h_back = self.hist("transmit_back")
        c = self.counters = SenderCounters()

        self.in_loop = True
        self.set_state("ready")
        self.started.wait()
        self.set_state("running")
        period_start = monotonic_ns()
        next_send = period_start
        seq = 0
        while count is None or seq < count:
            if self.finish_requested:
                break
            if not self.running.is_set():
                self._pause()
                next_send = monotonic_ns()
                continue
            injected: Any = None
            if self.injections:
                injected = self.injections.popleft()
            t0 = monotonic_ns()
            if injected is None:
                payload = encode(sample_payload(seq, size))
            else:
                try:
                    payload = encode(injected)
                    limits.check(len(payload))
                except (CodecError, MessageTooLarge) as exc:
                    c.rejected += 1
                    self.event("inject-rejected", str(exc))
                    continue
            t1 = monotonic_ns()
            ser_ns = t1 - t0
            crc = crc32(payload)
            self.op = "send"
            wire = send(seq, ser_ns, crc, payload)
            if not c.sent:
                self.counts["t_first"] = t1
            c.sent += 1
            c.payload_bytes += len(payload)
            c.wire_bytes += wire
            h_ser.add(ser_ns)
            if injected is not None:
                c.injected += 1
                frame = Frame(seq, 0, ser_ns, crc, payload)
                self.pinned.append(self.sample(frame, injected=True, side="sender"))
            if pingpong:
                self.op = "recv"
                try:
                    echo = recv()
                    while echo.seq != seq:
                        c.late += 1
                        echo = recv()
                except RecvTimeout:
                    c.timeouts += 1
                    seq += 1
                    continue
                t2 = monotonic_ns()
                h_lat.add(t2 - t0)
                h_back.add(t2 - echo.t_send)
                c.echoed += 1
                if echo.crc != crc or crc32(echo.payload) != crc:
                    c.echo_corrupt += 1
                self.recent.append((echo, t2 - t0))
                now = t2
            else:
                now = monotonic_ns()
            seq += 1
            self.t_last = now
            if now >= self.next_flush:
                self.write_record()
            rate = self.rate
            if rate:
                next_send += int(1e9 / rate)
                delay = next_send - now
                if delay > 0:
                    self.op = "pace"
                    time.sleep(delay / 1e9)
                elif delay < -1_000_000_000:
                    next_send = now
        self.in_loop = False
        self.state = "done"
        self.op = "idle"
        self.write_record()

    def _pause(self) -> None:
        self.state = "paused"
        self.op = "paused"
        self.write_record()
        self.running.wait()
        self.state = "running"
        self.write_record(status_only=True)

    def write_record(self, status_only: bool = False) -> None:
        c = getattr(self, "counters", None)
        if c is not None:
            self.counts.update({name: getattr(c, name) for name in c.__slots__})
            self.counts["t_last"] = getattr(self, "t_last", 0)
        super().write_record(status_only)

    def sample_from_recent(self, item: tuple) -> dict[str, Any]:
        echo, rtt = item
        return self.sample(echo, forward=False, side="sender", rtt_ns=rtt)
