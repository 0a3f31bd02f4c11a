"""What a session runs: mechanism, format, pattern, workload; validated before anything starts."""

from __future__ import annotations

from dataclasses import dataclass, field

from ipc_explorer.codecs import codec_names
from ipc_explorer.transports import MECHANISMS, TransportOptions
from ipc_explorer.transports.base import broker_url_problem

PATTERNS = ("stream", "ping-pong")


class UsageError(Exception):
    """A configuration a user can fix: the text says how."""


@dataclass
class SessionConfig:
    mechanism: str = "pipe"
    format: str = "msgpack"
    pattern: str = "stream"
    count: int | None = 1000  # None: until stopped
    size: int = 64  # length of the generated payload's data blob, in bytes
    rate: float | None = None  # messages per second; None: as fast as possible
    options: TransportOptions = field(default_factory=TransportOptions)
    cpus: dict[str, int] | None = None  # {"sender": 0, "receiver": 1} pins each child
    #: Children's niceness: the app raises it so that its own UI keeps a core's share at full
    #: rate on a small machine (figures are then those of slightly deprioritised processes).
    nice: int = 0
    #: Fault injection: flip a payload byte of every Nth message after its checksum is taken.
    corrupt_every: int | None = None
    #: Start in step mode: both children hold before every stage until told to go on.
    step: bool = False
    #: Fault: SIGKILL the receiver once it has this many messages, and start another that
    #: takes over the channel (mechanisms whose messages wait by name: amqp, mq).
    kill_receiver_at: int | None = None
    #: The receiver on another host: its agent's ADDR:PORT (``ipc-explorer remote``), and a
    #: file holding the shared token (else IPC_EXPLORER_TOKEN).
    remote: str | None = None
    remote_token_file: str | None = None

    def validate(self) -> None:
        if self.mechanism not in MECHANISMS:
            raise UsageError(
                f"unknown mechanism {self.mechanism!r}; valid mechanisms: {', '.join(MECHANISMS)}"
            )
        names = codec_names()
        if self.format not in names:
            raise UsageError(f"unknown format {self.format!r}; valid formats: {', '.join(names)}")
        if self.pattern not in PATTERNS:
            raise UsageError(
                f"unknown pattern {self.pattern!r}; valid patterns: {', '.join(PATTERNS)}"
            )
        if self.count is not None and self.count < 0:
            raise UsageError("--count must be 0 or more")
        if self.size < 0:
            raise UsageError("--size must be 0 or more")
        if self.corrupt_every is not None and self.corrupt_every < 1:
            raise UsageError("--corrupt-every must be 1 or more")
        if self.kill_receiver_at is not None and self.kill_receiver_at < 1:
            raise UsageError("--kill-receiver-at must be 1 or more")
        if self.kill_receiver_at is not None and self.mechanism not in ("amqp", "mq"):
            raise UsageError(
                "--kill-receiver-at needs a channel a new receiver can take over: amqp or mq "
                "(their messages wait in a queue by name)"
            )
        if (
            self.kill_receiver_at is not None
            and self.count is not None
            and self.kill_receiver_at >= self.count
        ):
            raise UsageError(
                f"--kill-receiver-at {self.kill_receiver_at} must be below --count {self.count}: "
                "the receiver is killed mid-run"
            )
        if self.kill_receiver_at is not None and self.remote is not None:
            raise UsageError(
                "--kill-receiver-at kills and replaces a receiver on this host; it does not "
                "combine with --remote"
            )
        if self.options.broker and (problem := broker_url_problem(self.options.broker)):
            raise UsageError(problem)
        if not 0 <= self.options.prefetch <= 65535:
            raise UsageError("--prefetch must be 0 (no limit) to 65535")
        if self.remote is not None and self.mechanism not in ("tcp", "udp", "http", "amqp"):
            raise UsageError(
                f"{self.mechanism} stays on one machine; across hosts: tcp, udp, http, amqp"
            )
        if self.remote is not None and self.mechanism == "amqp" and not self.options.broker:
            raise UsageError(
                "amqp across hosts needs --broker: a broker both hosts can reach (the private "
                "node listens on 127.0.0.1 only)"
            )
        if self.rate is not None and self.rate <= 0:
            raise UsageError("--rate must be more than 0 (leave it out for as fast as possible)")

    @property
    def duplex(self) -> bool:
        return self.pattern == "ping-pong"
