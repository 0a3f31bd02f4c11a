"""POSIX message queues: the kernel keeps whole messages, in priority order, up to a depth.

A full queue blocks the sender; the limits come from /proc/sys/fs/mqueue (here msg_max 10 and
msgsize_max 8192) and asking for more fails even as root, so they are shown, not hidden.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import posix_ipc

from ipc_explorer.codecs.base import Span
from ipc_explorer.kernel.facts import Facts
from ipc_explorer.transports import register
from ipc_explorer.transports.base import (
    ENVELOPE,
    ChannelEnd,
    ChannelPlan,
    Frame,
    Limits,
    Role,
    Transport,
    TransportError,
    TransportOptions,
    envelope_spans,
    monotonic_ns,
)

_PROC = Path("/proc/sys/fs/mqueue")


def system_limit(name: str, fallback: int) -> int:
    try:
        return int((_PROC / name).read_text())
    except (OSError, ValueError):
        return fallback


@register
class MqTransport(Transport):
    name = "mq"
    title = "POSIX message queue"
    boundaries = "message"
    reconnectable = True  # the queue is opened by name: a new receiver reads on

    @classmethod
    def create(
        cls, options: TransportOptions, workdir: Path, tag: str, duplex: bool
    ) -> ChannelPlan:
        depth = options.mq_max_messages or system_limit("msg_default", 10)
        msgsize = options.mq_msgsize or system_limit("msgsize_default", 8192)
        names: dict[str, Any] = {"forward": f"/ipcx-{tag}-mq"}
        if duplex:
            names["back"] = f"/ipcx-{tag}-mq-back"
        plan = ChannelPlan(
            mechanism=cls.name,
            duplex=duplex,
            workdir=str(workdir),
            options=options,
            limits=Limits(
                max_wire=msgsize,
                overhead=ENVELOPE.size,
                limit_text=f"this queue's msgsize is {msgsize} bytes",
                buffer_bytes=depth * msgsize,
            ),
            names={**names, "depth": depth, "msgsize": msgsize},
        )
        try:
            for key in ("forward", "back"):
                if key in names:
                    posix_ipc.MessageQueue(
                        names[key],
                        posix_ipc.O_CREX,
                        mode=0o600,
                        max_messages=depth,
                        max_message_size=msgsize,
                    ).close()
        except ValueError as exc:
            cls.destroy(plan)
            raise TransportError(
                f"cannot create a queue of {depth} x {msgsize} B ({exc}); the limits here are "
                f"msg_max {system_limit('msg_max', 10)}, msgsize_max "
                f"{system_limit('msgsize_max', 8192)} (/proc/sys/fs/mqueue)"
            ) from None
        except posix_ipc.Error as exc:
            cls.destroy(plan)
            raise TransportError(f"cannot create the message queue: {exc}") from None
        return plan

    @classmethod
    def destroy(cls, plan: ChannelPlan) -> None:
        for key in ("forward", "back"):
            name = plan.names.get(key)
            if name:
                try:
                    posix_ipc.unlink_message_queue(name)
                except posix_ipc.ExistentialError:
                    pass
        super().destroy(plan)

    def __init__(self, plan: ChannelPlan, role: Role):
        super().__init__(plan, role)
        self._out: posix_ipc.MessageQueue | None = None
        self._in: posix_ipc.MessageQueue | None = None

    def open(self) -> None:
        forward = posix_ipc.MessageQueue(self.plan.names["forward"])
        back = posix_ipc.MessageQueue(self.plan.names["back"]) if self.plan.duplex else None
        if self.role == "sender":
            self._out, self._in = forward, back
        else:
            self._out, self._in = back, forward

    def send(self, seq: int, ser_ns: int, crc: int, payload: bytes) -> int:
        assert self._out is not None
        self.limits.check(len(payload))
        message = ENVELOPE.pack(seq, monotonic_ns(), ser_ns, crc) + payload
        self._out.send(message)
        return len(message)

    def recv(self) -> Frame:
        assert self._in is not None
        message, _priority = self._in.receive()
        if len(message) < ENVELOPE.size:
            raise TransportError(f"runt message of {len(message)} bytes on the queue")
        seq, t_send, ser_ns, crc = ENVELOPE.unpack_from(message, 0)
        return Frame(seq, t_send, ser_ns, crc, message[ENVELOPE.size :])

    def close(self) -> None:
        for queue in (self._out, self._in):
            if queue is not None:
                queue.close()

    def wire_image(self, frame: Frame, forward: bool = True) -> tuple[bytes, list[Span]]:
        header = ENVELOPE.pack(frame.seq, frame.t_send, frame.ser_ns, frame.crc)
        return header + frame.payload, envelope_spans(0, frame)

    def live_state(self) -> dict[str, Any]:
        queue = self._in if self.role == "receiver" else self._out
        if queue is None:
            return {}
        try:
            return {"queue_depth": queue.current_messages, "queue_max": queue.max_messages}
        except posix_ipc.ExistentialError:
            return {}

    @classmethod
    def kernel_facts(cls, plan: ChannelPlan, ends: dict[str, ChannelEnd]) -> Facts:
        """Each queue's depth and limits from mq_getattr, opened by name by the parent."""
        facts = Facts()
        for key, prefix in (("forward", ""), ("back", "back_")):
            name = plan.names.get(key)
            if not name:
                continue
            source = f"mq_getattr on {name}, opened by the parent"
            try:
                queue = posix_ipc.MessageQueue(name)
            except posix_ipc.ExistentialError:
                facts.add(prefix + "queue", "gone", f"mq_open {name}")
                continue
            try:
                facts.add(prefix + "queue_depth", queue.current_messages, source)
                facts.add(prefix + "queue_max_messages", queue.max_messages, source)
                facts.add(prefix + "queue_message_size", queue.max_message_size, source)
            finally:
                queue.close()
        return facts

    def kernel_object(self) -> str:
        names = self.plan.names
        return f"{names['forward']} (depth {names['depth']} x {names['msgsize']} B)"

    def framing_text(self) -> str:
        return (
            "the kernel keeps whole messages: each is one mq_send of a "
            f"{ENVELOPE.size}-byte envelope (seq, t_send, serialize ns, crc32) and the payload, "
            "priority 0"
        )
