"""The receiver: takes each message off the channel, verifies it (checksum, decodable,
sequence) and times it; in ping-pong it echoes the message back on the channel's other way."""

from __future__ import annotations

import time
from typing import Any
from zlib import crc32

from ipc_explorer.children.runtime import ChildRuntime
from ipc_explorer.codecs import DecodeError, get_codec
from ipc_explorer.transports import ChannelClosed

monotonic_ns = time.monotonic_ns

#: Gaps larger than this are counted as lost at once instead of tracked seq by seq.
MAX_TRACKED_MISSING = 1 << 20


class SequenceTracker:
    """Tells loss, duplication and reordering apart in bounded memory.

    ``next`` is one past the highest sequence seen; a number below it is either a late arrival
    of a missing one (reordered) or a second copy (duplicated).
    """

    __slots__ = ("next", "missing", "unique", "duplicated", "reordered", "untracked")

    def __init__(self) -> None:
        self.next = 0
        self.missing: set[int] = set()
        self.unique = 0
        self.duplicated = 0
        self.reordered = 0
        self.untracked = 0

    def see(self, seq: int) -> None:
        if seq == self.next:
            self.next = seq + 1
            self.unique += 1
        elif seq > self.next:
            gap = seq - self.next
            if gap + len(self.missing) <= MAX_TRACKED_MISSING:
                self.missing.update(range(self.next, seq))
            else:
                self.untracked += gap
            self.next = seq + 1
            self.unique += 1
        elif seq in self.missing:
            self.missing.discard(seq)
            self.reordered += 1
            self.unique += 1
        else:
            self.duplicated += 1


class Receiver(ChildRuntime):
    def run(self) -> None:
        self.in_loop = True  # a stop (or the parent's death) must cut a blocking open short
        channel = self.open_channel()
        cfg = self.config
        decode = get_codec(cfg["format"]).decode
        pingpong = cfg["pattern"] == "ping-pong"
        recv_batch = channel.recv_batch
        send = channel.send
        self.op = "recv"
        add_one_way = self.values("one_way").append
        add_transmit = self.values("transmit").append
        add_deserialize = self.values("deserialize").append
        add_sync = self.values("sync_wait").append
        # A broker's manual acks: given once the parent has this receiver's counts (right after
        # a telemetry record), so that a receiver killed at any moment leaves every message it
        # counted acknowledged and every other one to be redelivered to the next: exactly once
        # in the counts. The wait until the ack is timed as the "ack" stage.
        acks = channel.acknowledges
        self.unacked: list[tuple[int, int]] = []  # (delivery tag, verified at ns)
        ack_every = max(1, channel.plan.options.prefetch // 2)
        pending = self.unacked
        tracker = self.tracker = SequenceTracker()
        # A receiver that takes over from a killed one starts where that one had got to:
        # what it sees below is a redelivery of what the other had processed.
        tracker.next = int(cfg.get("expect_from") or 0)
        # On another host the sender's clock is not ours: its stamps plus this offset (measured
        # by the parent at start, with an error bound it reports) read on our clock.
        offset = self.clock_offset = int(cfg.get("clock_offset_ns") or 0)
        self.received = 0
        self.payload_bytes = 0
        self.corrupt = 0
        recent = self.recent.append

        self.in_loop = True
        self.set_state("ready")
        self.hold_until(self.started)
        if self.stopping:
            return
        self.set_state("running")
        running = self.running
        try:
            while True:
                if not running.is_set():
                    self.wait_while_paused("recv")
                    continue
                if self.stepping:
                    self.receive_in_steps(decode, pingpong)
                    continue
                batch = recv_batch()
                # Counters live in locals for the batch and are published after it, so that the
                # status thread sees them whenever the loop blocks (only ever between batches).
                expect, unique, received = tracker.next, tracker.unique, self.received
                payload_bytes = self.payload_bytes
                for frame in batch:
                    t_recv = monotonic_ns()
                    payload = frame.payload
                    error = None
                    if crc32(payload) == frame.crc:
                        try:
                            decode(payload)
                        except DecodeError as exc:
                            error = str(exc)
                    else:
                        error = "checksum mismatch"
                    t_done = monotonic_ns()
                    seq = frame.seq
                    if seq == expect:
                        expect += 1
                        unique += 1
                    else:
                        tracker.next, tracker.unique = expect, unique
                        tracker.see(seq)
                        expect, unique = tracker.next, tracker.unique
                    received += 1
                    payload_bytes += len(payload)
                    t_send = frame.t_send + offset  # the sender's clock read on ours
                    sync_ns = frame.sync_ns
                    add_one_way(frame.ser_ns + t_done - t_send)
                    add_transmit(t_recv - t_send - sync_ns)
                    add_deserialize(t_done - t_recv)
                    if sync_ns:
                        add_sync(sync_ns)
                    if error is not None:
                        self.corrupt += 1
                        self.event("corrupt", f"message {seq}: {error}", seq=seq)
                        recent((frame, t_recv, t_done, error))
                    if pingpong:
                        send(seq, frame.ser_ns, frame.crc, payload)
                    if acks:
                        pending.append((frame.tag, t_done))
                tracker.next, tracker.unique = expect, unique
                if not self.received:
                    self.t_first = t_recv
                self.received = received
                self.payload_bytes = payload_bytes
                self.t_last = t_done
                if error is None:
                    recent((frame, t_recv, t_done, error))
                if t_done >= self.next_flush or (acks and len(pending) >= ack_every):
                    self.write_record()
                    if acks:
                        self.acknowledge_counted()
        except ChannelClosed as exc:
            self.in_loop = False
            self.state = "peer-closed"
            self.op = "idle"
            self.event("peer-closed", str(exc), reason=exc.reason)
            self.write_record()
            # Stay until told to stop: the parent decides whether this was an error.
            self.in_loop = True
            while not self.stopping:
                time.sleep(0.05)

    def receive_in_steps(self, decode: Any, pingpong: bool) -> None:
        """One message, held before each stage (step mode): the slow, plain twin of the loop.

        Nothing is received before the parent allows it, so that the message sits in the
        kernel meanwhile. Timings of a held message are not recorded (they would be the
        user's pauses); counts and integrity are, as for any message.
        """
        assert self.channel is not None
        if not self.await_step("receive"):
            return
        self.op = "recv"
        frame = self.channel.recv()
        t_recv = monotonic_ns()
        payload = frame.payload
        self.stage_done("receive", seq=frame.seq, payload_bytes=len(payload))
        stepping = self.await_step("deserialize")
        crc_ok = crc32(payload) == frame.crc
        error = None if crc_ok else "checksum mismatch"
        if crc_ok:
            try:
                decode(payload)
            except DecodeError as exc:
                error = str(exc)
        t_done = monotonic_ns()
        if stepping:
            self.stage_done("deserialize", seq=frame.seq, crc_ok=crc_ok, error=error)
            stepping = self.await_step("verified")
        tracker = self.tracker
        expected = tracker.next
        tracker.see(frame.seq)
        self.received += 1
        self.payload_bytes += len(payload)
        if not self.received - 1:
            self.t_first = t_recv
        self.t_last = t_done
        if error is not None:
            self.corrupt += 1
            self.event("corrupt", f"message {frame.seq}: {error}", seq=frame.seq)
        self.recent.append((frame, t_recv, t_done, error))
        if stepping:
            self.stage_done(
                "verified",
                seq=frame.seq,
                expected_seq=expected,
                in_order=frame.seq == expected,
                intact=error is None,
                missing=len(tracker.missing) + tracker.untracked,
            )
        if pingpong:
            if stepping:
                stepping = self.await_step("echo")
            wire = self.channel.send(frame.seq, frame.ser_ns, frame.crc, payload)
            if stepping:
                self.stage_done("echo", seq=frame.seq, wire_bytes=wire)
        if self.channel.acknowledges:  # the stage reports carried the counts already
            self.unacked.append((frame.tag, t_done))
            self.acknowledge_counted()
        self.op = "recv"

    def acknowledge_counted(self) -> None:
        """Acknowledge every message counted so far (one ack with ``multiple``), after the
        record that carried their counts; the wait of each is timed as the "ack" stage."""
        pending = self.unacked
        if not pending or self.channel is None:
            return
        now = monotonic_ns()
        self.channel.acknowledge_up_to(pending[-1][0])
        add_ack = self.values("ack").append
        for _tag, verified in pending:
            add_ack(now - verified)
        pending.clear()

    def write_record(self, status_only: bool = False) -> None:
        tracker = getattr(self, "tracker", None)
        if tracker is not None:
            self.counts.update(
                received=self.received,
                unique=tracker.unique,
                duplicated=tracker.duplicated,
                reordered=tracker.reordered,
                missing=len(tracker.missing) + tracker.untracked,
                highest=tracker.next - 1,
                corrupt=self.corrupt,
                payload_bytes=self.payload_bytes,
                t_first=getattr(self, "t_first", 0),
                t_last=getattr(self, "t_last", 0),
            )
        super().write_record(status_only)

    def sample_from_recent(self, item: tuple) -> dict[str, Any]:
        frame, t_recv, t_done, error = item
        return self.sample(
            frame,
            side="receiver",
            latency_ns=frame.ser_ns + t_done - frame.t_send - self.clock_offset,
            transmit_ns=t_recv - frame.t_send - self.clock_offset - frame.sync_ns,
            deserialize_ns=t_done - t_recv,
            sync_ns=frame.sync_ns,
            error=error,
        )
