"""The one small interface every IPC mechanism implements.

The parent *creates* a channel (every kernel object: pipe fds, FIFOs, bound sockets, shm and
semaphores, queues) before any child starts, so that a port in use or a missing permission is a
clear error in the parent, and so that the children never race to create them. Each child then
*opens* its end from the plan. Every side can *destroy* the plan's objects by name: unlinking is
idempotent, which is what lets a child clean up after a parent that was SIGKILLed.

Every message crosses as a frame: an envelope (sequence number, send timestamp, serialize time,
CRC-32 of the payload) and the payload bytes. How the envelope goes on the wire is the
mechanism's business (a binary header on streams and datagrams, HTTP headers for http);
``wire_image`` reproduces the exact bytes so that front ends can show them.
"""

from __future__ import annotations

import os
import shutil
import struct
import sys
import time
import urllib.parse
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Literal

from ipc_explorer.codecs.base import Span
from ipc_explorer.kernel.descriptors import descriptor_facts
from ipc_explorer.kernel.facts import Facts

Role = Literal["sender", "receiver"]

#: seq u64, t_send ns u64 (CLOCK_MONOTONIC), serialize ns u32, CRC-32 of the payload u32.
ENVELOPE = struct.Struct("<QQII")
#: Length prefix of a frame on a byte stream: envelope + payload bytes.
LENGTH_PREFIX = struct.Struct("<I")
#: Byte streams and HTTP have no natural limit; this cap keeps one message in memory bounded.
MAX_STREAM_MESSAGE = 16 * 1024 * 1024

monotonic_ns = time.monotonic_ns


class TransportError(Exception):
    """A problem the user can cause or must know about: port in use, too large, peer gone."""


class MessageTooLarge(TransportError):
    """The message does not fit the mechanism; the text names the limit."""


class ChannelClosed(TransportError):
    """The other side is gone (EOF, EPIPE, connection reset). ``reason`` is short: 'EPIPE'."""

    def __init__(self, reason: str, message: str):
        super().__init__(message)
        self.reason = reason


class RecvTimeout(TransportError):
    """Nothing arrived within the channel's timeout (only lossy mechanisms use one)."""


@dataclass(slots=True)
class Frame:
    """One message as it crosses: envelope fields and payload bytes."""

    seq: int
    t_send: int
    ser_ns: int
    crc: int
    payload: bytes
    #: ns spent waiting on semaphores/locks for this frame, both sides where the mechanism knows.
    sync_ns: int = 0
    #: A broker's delivery tag, to acknowledge the message by (amqp); 0 elsewhere.
    tag: int = 0


@dataclass(frozen=True, slots=True)
class Limits:
    """What one message may be on this channel."""

    max_wire: int  # largest message on the wire, framing included, in bytes
    overhead: int  # framing bytes added to each payload by this mechanism
    limit_text: str  # the limit as a user reads it: "the UDP datagram limit is 65507 bytes"
    buffer_bytes: int | None = None  # kernel buffer between the sides, where there is one

    @property
    def max_payload(self) -> int:
        return self.max_wire - self.overhead

    def check(self, payload_len: int) -> None:
        """Raise MessageTooLarge with a message naming the limit."""
        wire = payload_len + self.overhead
        if wire > self.max_wire:
            raise MessageTooLarge(
                f"message too large: {wire} bytes on the wire ({self.overhead} B framing + "
                f"{payload_len} B payload); {self.limit_text}"
            )


@dataclass
class TransportOptions:
    """Knobs a user can turn; each mechanism reads the ones it has."""

    host: str = "127.0.0.1"
    port: int = 0
    nagle: bool = False
    #: Byte-stream sockets and HTTP: header and payload in two send calls instead of one.
    split_writes: bool = False
    pipe_size: int | None = None
    slots: int = 8
    slot_size: int = 65536
    mq_max_messages: int | None = None
    mq_msgsize: int | None = None
    content_type: str = "application/octet-stream"
    #: amqp: the broker's URL (none: a private node), shown without its password once
    #: provisioned; its management API; the consumer's prefetch window; acks by the broker.
    broker: str = ""
    broker_private: bool = False
    management: str = ""
    prefetch: int = 50
    auto_ack: bool = False
    #: Values a child needs that must never be printed or put on a command line (a broker's
    #: credentials): given to the children in their environment, left out of ``to_json``.
    secrets: dict[str, str] = field(default_factory=dict, repr=False)

    def to_json(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if k != "secrets"}


@dataclass
class ChannelPlan:
    """Everything a child needs to open its end, and every kernel object to remove at the end.

    ``names`` holds the mechanism's objects (paths, shm/sem/queue names, addresses), ``fds`` the
    descriptors each role inherits (same numbers in the child, via ``pass_fds``).
    """

    mechanism: str
    duplex: bool
    workdir: str
    options: TransportOptions
    limits: Limits
    names: dict[str, Any] = field(default_factory=dict)
    fds: dict[str, dict[str, int]] = field(default_factory=lambda: {"sender": {}, "receiver": {}})

    @property
    def env(self) -> dict[str, str]:
        """What the children get in their environment (the options' secrets)."""
        return self.options.secrets

    def fds_for(self, role: Role) -> list[int]:
        return list(self.fds.get(role, {}).values())

    def to_json(self) -> dict[str, Any]:
        return {
            "mechanism": self.mechanism,
            "duplex": self.duplex,
            "workdir": self.workdir,
            "options": self.options.to_json(),
            "limits": {
                "max_wire": self.limits.max_wire,
                "overhead": self.limits.overhead,
                "limit_text": self.limits.limit_text,
                "buffer_bytes": self.limits.buffer_bytes,
            },
            "names": self.names,
            "fds": self.fds,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ChannelPlan:
        return cls(
            mechanism=data["mechanism"],
            duplex=data["duplex"],
            workdir=data["workdir"],
            options=TransportOptions(**data["options"]),
            limits=Limits(**data["limits"]),
            names=data["names"],
            fds={role: dict(v) for role, v in data["fds"].items()},
        )

    def close_fds(self) -> None:
        """Close the parent's copies of the inherited fds once the children have them."""
        for role_fds in self.fds.values():
            for fd in role_fds.values():
                try:
                    os.close(fd)
                except OSError:
                    pass
            role_fds.clear()


@dataclass(frozen=True)
class ChannelEnd:
    """One side's end of an open channel as the parent sees it: the child's pid and the
    descriptors it reported (``Transport.channel_fds``), to be read through the kernel."""

    pid: int
    fds: dict[str, int]


class Transport(ABC):
    """One IPC mechanism. The class creates and destroys; an instance is one side's open end."""

    name: ClassVar[str]
    title: ClassVar[str]
    reliable: ClassVar[bool] = True
    #: "stream" (framed byte stream), "datagram", "message" (queue / ring slots), "request" (HTTP)
    boundaries: ClassVar[str]
    #: Lossy mechanisms give recv a timeout in ping-pong so a lost datagram does not hang.
    lossy_timeout_s: ClassVar[float | None] = None
    #: Stages a mechanism times on top of the common ones ("confirm", "ack" for a broker):
    #: ``last_stage_ns`` holds the last message's figure for each.
    extra_stages: ClassVar[tuple[str, ...]] = ()
    #: Whether a new receiver can take over the channel after the first is killed (the
    #: messages wait in a queue by name), so that a run can go on with it.
    reconnectable: ClassVar[bool] = False
    #: Whether the receiver must acknowledge each message once it has verified it.
    acknowledges: bool = False
    #: Whether a child removes the channel's objects when it exits (so that a parent killed
    #: with SIGKILL leaves nothing behind). Not where the channel outlives a reader by design
    #: (a broker's queue, which expires by itself instead).
    children_destroy: ClassVar[bool] = True

    def __init__(self, plan: ChannelPlan, role: Role):
        self.plan = plan
        self.role = role
        self.limits = plan.limits
        #: ns the last send spent blocked on a semaphore or lock (shm); 0 elsewhere.
        self.last_sync_ns = 0
        self.last_stage_ns: dict[str, int] = {}

    # -- in the parent -------------------------------------------------------------------
    @classmethod
    async def provision(
        cls, options: TransportOptions, progress: Callable[[str], None] | None = None
    ) -> TransportOptions:
        """Make ready what the channel needs beyond the kernel, before ``create``: a broker
        (which may take seconds: ``progress`` says how it goes). Most mechanisms need none."""
        return options

    @classmethod
    async def shutdown(cls) -> None:
        """Release what ``provision`` keeps for the whole process (a private broker); most
        mechanisms keep nothing."""
        return None

    @classmethod
    @abstractmethod
    def create(
        cls, options: TransportOptions, workdir: Path, tag: str, duplex: bool
    ) -> ChannelPlan:
        """Create every kernel object of a channel; raise TransportError with a clear text."""

    @classmethod
    def destroy(cls, plan: ChannelPlan) -> None:
        """Remove every kernel object named in the plan; idempotent, never raises."""
        shutil.rmtree(plan.workdir, ignore_errors=True)

    # -- in a child ----------------------------------------------------------------------
    @abstractmethod
    def open(self) -> None:
        """Open this role's end (may wait for the peer, e.g. a FIFO or an accept)."""

    @abstractmethod
    def send(self, seq: int, ser_ns: int, crc: int, payload: bytes) -> int:
        """Send one message, stamping t_send as the send begins; return the bytes put on the
        wire. Raises ChannelClosed when the peer is gone, MessageTooLarge past the limit."""

    @abstractmethod
    def recv(self) -> Frame:
        """Block until one message has arrived. Raises ChannelClosed when the peer is gone."""

    def acknowledge_up_to(self, tag: int) -> None:
        """Tell the channel every message up to delivery ``tag`` is processed (a broker's
        manual ack with ``multiple``); only where ``acknowledges``."""
        raise NotImplementedError(f"{self.name} has no acknowledgements")

    def trailer_size(self, frame: Frame) -> int:
        """Framing bytes after the payload in ``wire_image`` (AMQP's frame-end octet)."""
        return 0

    def recv_batch(self) -> list[Frame]:
        """Block until at least one message has arrived; return every one already here.

        Byte streams read in bulk and hand over all the frames of one read, which saves a call
        per message; other mechanisms take one message per call.
        """
        return [self.recv()]

    @abstractmethod
    def close(self) -> None:
        """Close this side's descriptors (not the kernel objects: see destroy)."""

    @abstractmethod
    def wire_image(self, frame: Frame, forward: bool = True) -> tuple[bytes, list[Span]]:
        """The exact bytes of ``frame`` on the wire and spans for the framing part.

        ``forward`` is true for a frame that went sender -> receiver, false for an echo.

        Framing spans have kind "framing"; the payload follows at the offset after them.
        """

    @classmethod
    def wire_split(cls, wire_bytes: int, payload_bytes: int) -> dict[str, int] | None:
        """The sender's wire bytes as headers, body and TLS overhead, where the totals tell it
        (a framed byte stream); None where the mechanism counts its own (the HTTP family, in
        its live state) or has no such split."""
        return None

    def describe(self) -> dict[str, Any]:
        """Static facts for the flow panel: kernel object, framing, limits."""
        return {
            "mechanism": self.name,
            "title": self.title,
            "kernel_object": self.kernel_object(),
            "framing": self.framing_text(),
            "boundaries": self.boundaries,
            "reliable": self.reliable,
            "max_wire": self.limits.max_wire,
            "buffer_bytes": self.limits.buffer_bytes,
            "limit": self.limits.limit_text,
            "fds": self.channel_fds(),
        }

    def live_state(self) -> dict[str, Any]:
        """Values that change while running (queue depth, semaphore values); cheap to call."""
        return {}

    def sync_objects(self) -> list[Any]:
        """Instrumented semaphores/locks this side uses (see ipc_explorer.sync)."""
        return []

    def keep_alive(self) -> None:
        """Called now and then while the loop holds (paused, stepping, not started yet): a
        channel with a peer that expects signs of life (a broker's heartbeats) gives them, or
        answers what the peer cannot go on without (an HTTPS server, a ClientHello). Kernel
        channels need nothing."""
        return None

    def channel_fds(self) -> dict[str, int]:
        """This side's descriptors on the channel ("in", "out"): numbers only, so that the
        parent can ask the kernel itself what is queued on them (``kernel_facts``)."""
        return {}

    @classmethod
    def kernel_facts(cls, plan: ChannelPlan, ends: dict[str, ChannelEnd]) -> Facts:
        """What the kernel holds between the sides right now, read by the parent: on a
        descriptor-based channel, FIONREAD and the capacity of the receiver's end (its
        ``queued_bytes``), and what the sender's socket has not handed over yet."""
        facts = Facts()
        receiver, sender = ends.get("receiver"), ends.get("sender")
        if receiver is not None and "in" in receiver.fds:
            facts.update(descriptor_facts(receiver.pid, receiver.fds["in"]))
        if sender is not None and "out" in sender.fds:
            mine = descriptor_facts(sender.pid, sender.fds["out"], prefix="sender_")
            for name in ("sender_unsent_bytes",):
                if name in mine:
                    facts.items[name] = mine.items[name]
        if plan.duplex and sender is not None and "in" in sender.fds:
            facts.update(descriptor_facts(sender.pid, sender.fds["in"], prefix="back_"))
        return facts

    @abstractmethod
    def kernel_object(self) -> str:
        """The kernel object in use, as a user would name it: 'pipe fd 5->6', '127.0.0.1:40123'."""

    @abstractmethod
    def framing_text(self) -> str:
        """How message boundaries are kept on this mechanism."""


def seconds_from_env(name: str, default: float, minimum: float) -> float:
    """A timing the user may tune for a slow link (heartbeats, idle bounds): ``name`` in the
    environment, else ``default``; a value that is no number of at least ``minimum`` seconds is
    said in one line and the default kept."""
    text = os.environ.get(name)
    if text is None:
        return default
    try:
        value = float(text)
    except ValueError:
        value = minimum - 1
    if not minimum <= value < 86_400:
        print(
            f"ipc-explorer: {name}={text!r} is not a number of seconds from {minimum:g}: "
            f"using {default:g}",
            file=sys.stderr,
        )
        return default
    return value


def redact(url: str) -> str:
    """The URL without its password: what may be shown (even of a URL that does not parse)."""
    try:
        parts = urllib.parse.urlsplit(url)
        if parts.password is None:
            return url
    except ValueError:
        return "(a URL that does not parse)"
    where = parts.netloc.rpartition("@")[2]  # host and port as given, IPv6 brackets kept
    return urllib.parse.urlunsplit(parts._replace(netloc=f"{parts.username}:***@{where}"))


def broker_url_problem(url: str) -> str | None:
    """What is wrong with a broker URL a user gave (None: nothing), without repeating its
    password."""
    try:
        parts = urllib.parse.urlsplit(url)
        port = parts.port
    except ValueError as exc:
        return f"--broker {redact(url)} is not a URL: {exc}"
    if parts.scheme not in ("amqp", "amqps"):
        return f"--broker must be an amqp:// or amqps:// URL, not {redact(url)}"
    if not parts.hostname:
        return f"--broker {redact(url)} names no host"
    if port == 0:
        return f"--broker {redact(url)}: port 0 is not a broker's port"
    return None


def envelope_spans(offset: int, frame: Frame) -> list[Span]:
    """Spans of a binary envelope starting at ``offset``."""
    return [
        Span(offset, offset + 8, "envelope.seq", "framing", f"seq u64 {frame.seq}"),
        Span(
            offset + 8, offset + 16, "envelope.t_send", "framing", f"t_send ns u64 {frame.t_send}"
        ),
        Span(
            offset + 16,
            offset + 20,
            "envelope.ser_ns",
            "framing",
            f"serialize ns u32 {frame.ser_ns}",
        ),
        Span(offset + 20, offset + 24, "envelope.crc32", "framing", f"crc32 0x{frame.crc:08x}"),
    ]
