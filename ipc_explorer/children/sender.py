"""The sender: serializes messages (generated or injected) and sends them, as fast as the rate
allows (stream) or one round trip at a time (ping-pong), timing each stage."""

from __future__ import annotations

import time
from typing import Any
from zlib import crc32

from ipc_explorer.children.runtime import ChildRuntime
from ipc_explorer.codecs import CodecError, get_codec
from ipc_explorer.codecs.sample import SampleGenerator
from ipc_explorer.telemetry.protocol import SENDER_STAGES
from ipc_explorer.transports import Frame, MessageTooLarge, RecvTimeout

monotonic_ns = time.monotonic_ns
U32_MAX = 0xFFFFFFFF


class SenderCounters:
    __slots__ = (
        "sent",
        "payload_bytes",
        "wire_bytes",
        "echoed",
        "echo_corrupt",
        "timeouts",
        "late",
        "injected",
        "rejected",
    )

    def __init__(self) -> None:
        for name in self.__slots__:
            setattr(self, name, 0)


class Sender(ChildRuntime):
    def run(self) -> None:
        self.in_loop = True  # a stop (or the parent's death) must cut a blocking open short
        channel = self.open_channel()
        cfg = self.config
        encode = get_codec(cfg["format"]).encode
        make_payload = SampleGenerator(cfg["size"])
        count: int | None = cfg.get("count")
        unbounded = count is None
        last_seq = -1 if count is None else count - 1
        pingpong = cfg["pattern"] == "ping-pong"
        limits = channel.limits
        send = channel.send
        recv = channel.recv
        add_serialize = self.values("serialize").append
        add_rtt = self.values("rtt").append
        add_back = self.values("transmit_back").append
        # A mechanism's own stages (a broker's confirm, a new connection's connect and TLS
        # handshake), timed by the channel on each send.
        extra = [
            (name, self.values(name).append)
            for name in channel.extra_stages
            if name in SENDER_STAGES
        ]
        stage_ns = channel.last_stage_ns
        c = self.counters = SenderCounters()
        corrupt_every = cfg.get("corrupt_every") or 0
        injections = self.injections
        running = self.running

        self.in_loop = True
        self.set_state("ready")
        self.hold_until(self.started)
        if self.stopping:
            return
        self.set_state("running")
        self.op = "send"
        next_send = monotonic_ns()
        seq = 0
        while unbounded or seq <= last_seq:
            if self.finish_requested or self.stopping:
                break
            if not running.is_set():
                self.wait_while_paused("send")
                next_send = monotonic_ns()
                continue
            # Step mode holds before each stage; a message it lets through whole (to wake the
            # receiver) and the fast path alike run the same code below.
            staged = False
            if self.stepping:
                staged = self._hold_before_build()
                if self.finish_requested or self.stopping:  # told to stop while held
                    break
            stepping = staged
            if injections:
                injected, message = True, injections.popleft()
            else:
                injected, message = False, make_payload(seq)
            if stepping:
                self.stage_done("build", seq=seq, injected=injected, **_shape(message))
                stepping = self.await_step("serialize")
            if injected:
                payload = self._encode_injected(encode, limits, message)
                if payload is None:
                    continue
                t0 = monotonic_ns()
                ser_ns = self.injected_ser_ns
            else:
                t0 = monotonic_ns()
                payload = encode(message)
                ser_ns = monotonic_ns() - t0
                if ser_ns > U32_MAX:  # the envelope field is 32 bits: 4.29 s at most
                    ser_ns = U32_MAX
            crc = crc32(payload)
            if corrupt_every and seq % corrupt_every == corrupt_every - 1 and payload:
                payload = payload[:-1] + bytes([payload[-1] ^ 0xFF])  # the receiver must notice
            if stepping:
                self.stage_done(
                    "serialize", seq=seq, payload_bytes=len(payload), serialize_ns=ser_ns
                )
                stepping = self.await_step("send")
            wire = send(seq, ser_ns, crc, payload)
            if stepping:
                self.stage_done("send", seq=seq, wire_bytes=wire, crc32=crc)
            if pingpong:
                echo = self._await_echo(recv, seq, c, staged)
                now = monotonic_ns()
                if echo is not None:
                    if staged:
                        self.stage_done("echo received", seq=seq, rtt_ns=now - t0)
                    else:
                        add_rtt(now - t0)
                        add_back(now - echo.t_send)
                    c.echoed += 1
                    if echo.crc != crc or crc32(echo.payload) != crc:
                        c.echo_corrupt += 1
                    self.recent.append((echo, now - t0))
            else:
                now = monotonic_ns()
            if not seq:
                self.counts["t_first"] = t0
            c.sent += 1
            c.payload_bytes += len(payload)
            c.wire_bytes += wire
            if not staged:  # a message held at stages for seconds would swamp the timings
                add_serialize(ser_ns)
                if extra:
                    for name, add in extra:
                        add(stage_ns[name])
            if injected:
                c.injected += 1
                frame = Frame(seq, 0, ser_ns, crc, payload)
                self.pinned.append(self.sample(frame, injected=True, side="sender"))
            seq += 1
            self.t_last = now
            if now >= self.next_flush:
                self.write_record()
            rate = self.rate
            if rate and not staged:
                next_send += int(1e9 / rate)
                delay = next_send - now
                if delay > 0:
                    self.op = "pace"
                    self.wake.wait(delay / 1e9)  # a stop cuts the wait short
                    self.op = "send"
                elif delay < -1_000_000_000:
                    next_send = now
        self.in_loop = False
        self.state = "done"
        self.op = "idle"
        self.write_record()

    def _await_echo(self, recv: Any, seq: int, c: SenderCounters, staged: bool) -> Frame | None:
        """The echo of ``seq`` (later ones of earlier messages are counted and dropped); None
        when a lossy channel's timeout says it is lost. A message held at the receiver's
        stages (step mode) is waited for as long as step mode lasts."""
        while True:
            try:
                echo = recv()
                while echo.seq != seq:
                    c.late += 1
                    echo = recv()
                return echo
            except RecvTimeout:
                if staged and self.stepping and not self.stopping:
                    continue
                c.timeouts += 1
                return None

    def _hold_before_build(self) -> bool:
        """Held before the next message; True when it is to go stage by stage, False when
        step mode ended or the parent asked for one message straight through."""
        if not self.await_step("build"):
            return False
        if self.free_messages:
            self.free_messages -= 1
            return False
        return True

    def _encode_injected(self, encode: Any, limits: Any, value: Any) -> bytes | None:
        """Serialize a user's payload; a value that cannot be sent is reported, not sent."""
        t0 = monotonic_ns()
        try:
            payload = encode(value)
            limits.check(len(payload))
        except (CodecError, MessageTooLarge) as exc:
            self.counters.rejected += 1
            self.event("inject-rejected", str(exc))
            return None
        self.injected_ser_ns = min(monotonic_ns() - t0, U32_MAX)
        return payload

    def write_record(self, status_only: bool = False) -> None:
        c = getattr(self, "counters", None)
        if c is not None:
            self.counts.update({name: getattr(c, name) for name in c.__slots__})
            self.counts["t_last"] = getattr(self, "t_last", 0)
        super().write_record(status_only)

    def sample_from_recent(self, item: tuple) -> dict[str, Any]:
        echo, rtt = item
        return self.sample(echo, forward=False, side="sender", rtt_ns=rtt)


def _shape(value: Any) -> dict[str, Any]:
    """What a built message is, in a few words for the step narration."""
    if isinstance(value, dict):
        return {"value_type": "map", "keys": [str(k) for k in list(value)[:8]]}
    return {"value_type": type(value).__name__}
