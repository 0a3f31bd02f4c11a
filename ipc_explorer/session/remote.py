"""A session whose receiver runs on another host: the driving side of ``run --remote``.

The other host runs ``ipc-explorer remote --listen ADDR:PORT`` (session/agent.py). Over one
TCP connection, one JSON object a line: a challenge-response on the shared token first (an
HMAC of both sides' nonces each way, so the token never crosses the wire and each side knows
the other holds it), then a clock exchange (the agents' CLOCK_MONOTONIC is not ours: an
NTP-style offset with its error bound, the best of several), then the receiver's start: the
agent opens the receiving end of the channel on its own address, starts the receiver there and
relays its telemetry and exit; control lines and pings go the other way. The local sender gets
the plan with the agent's address. Every wait has a bound, and anything the agent sends is
checked before it is used.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import hashlib
import hmac
import json
import os
import re
import secrets
import socket
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ipc_explorer.transports import ChannelPlan, TransportError
from ipc_explorer.transports.base import seconds_from_env

#: Mechanisms that can cross hosts: the network ones (amqp through a broker both can reach).
REMOTE_MECHANISMS = ("tcp", "udp", "http", "amqp")
TOKEN_VARIABLE = "IPC_EXPLORER_TOKEN"
PROTOCOL = 2
#: The largest line the driving side accepts (relayed telemetry; a record is well under).
MAX_LINE = 8 * 1024 * 1024
CLOCK_SAMPLES = 16
CONNECT_TIMEOUT_S = 5.0
#: How long each answer of the handshake and the clock exchange may take (more on a slow link).
HANDSHAKE_TIMEOUT_S = seconds_from_env("IPCX_REMOTE_HANDSHAKE_S", 10.0, 1.0)
#: The agent may connect to a broker to open an amqp channel: longer than a handshake.
OPEN_TIMEOUT_S = 60.0
START_TIMEOUT_S = 30.0
#: Each side pings the other this often and gives up after IDLE_TIMEOUT_S of silence, so that
#: a host that vanishes without closing the connection (a link down, a power cut) is noticed.
#: Both hosts should be given the same bound: each pings at a fifth of its own.
IDLE_TIMEOUT_S = seconds_from_env("IPCX_REMOTE_IDLE_S", 15.0, 3.0)
PING_INTERVAL_S = IDLE_TIMEOUT_S / 5
#: The exit status a receiver is given when its agent went away: the session says why.
AGENT_GONE_EXIT = 255
NONCE_HEX = 32
#: What the agent reads of the receiver's settings (it checks each; the plan is its own).
RECEIVER_SETTINGS = ("format", "pattern", "size", "count", "expect_from", "clock_offset_ns", "step")


class RemoteError(TransportError):
    """The other host's agent refused, went away or answered nonsense: the text says which."""


def load_token(token_file: str | None = None) -> str:
    """The shared token: from --token-file, else from IPC_EXPLORER_TOKEN."""
    if token_file:
        try:
            token = Path(token_file).read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise RemoteError(f"cannot read the token file {token_file}: {exc.strerror}") from None
        except UnicodeDecodeError:
            raise RemoteError(f"the token file {token_file} is not UTF-8 text") from None
    else:
        token = os.environ.get(TOKEN_VARIABLE, "").strip()
    if not token:
        raise RemoteError(
            f"a remote agent needs a shared token: set {TOKEN_VARIABLE} or give --token-file"
        )
    return token


def split_address(text: str, default_host: str = "127.0.0.1") -> tuple[str, int]:
    """ADDR:PORT as host and port; IPv4 only, since the channel's end is opened on the
    address the driving side reached, and the mechanisms' ends are IPv4."""
    host, _, port = text.rpartition(":")
    try:
        number = int(port)
    except ValueError:
        raise RemoteError(f"expected ADDR:PORT, got {text!r}") from None
    if not 0 < number < 65536:
        raise RemoteError(f"port {number} is out of range in {text!r}")
    host = host.strip("[]")
    if ":" in host:
        raise RemoteError(f"{text!r} is an IPv6 address: two hosts talk over IPv4 only")
    return (host or default_host), number


def proof(token: str, prover: str, agent_nonce: str, driver_nonce: str) -> str:
    """What shows that ``prover`` ("agent" or "driver") holds the token, without sending it:
    an HMAC of both nonces, labelled by who proves, so that a proof is good for one
    connection and one direction only."""
    key = token.encode("utf-8", "surrogateescape")
    text = f"ipc-explorer/{PROTOCOL} {prover} {agent_nonce} {driver_nonce}".encode()
    return hmac.new(key, text, hashlib.sha256).hexdigest()


def proof_matches(expected: str, given: object) -> bool:
    return (
        isinstance(given, str)
        and given.isascii()
        and hmac.compare_digest(expected.encode(), given.encode())
    )


def new_nonce() -> str:
    return secrets.token_hex(NONCE_HEX // 2)


def is_nonce(value: object) -> bool:
    return isinstance(value, str) and re.fullmatch(f"[0-9a-f]{{{NONCE_HEX}}}", value) is not None


def keep_alive(sock: socket.socket | None) -> None:
    """The kernel's own check that the other host is still there: keepalive probes after 5 s
    idle, and unacknowledged data given up on after 15 s (where keepalive does not probe)."""
    if sock is None:
        return
    settings = [
        (socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1),
        (socket.IPPROTO_TCP, getattr(socket, "TCP_KEEPIDLE", None), 5),
        (socket.IPPROTO_TCP, getattr(socket, "TCP_KEEPINTVL", None), 2),
        (socket.IPPROTO_TCP, getattr(socket, "TCP_KEEPCNT", None), 3),
        (socket.IPPROTO_TCP, getattr(socket, "TCP_USER_TIMEOUT", None), int(IDLE_TIMEOUT_S * 1000)),
    ]
    for level, option, value in settings:
        if option is not None:
            with contextlib.suppress(OSError):
                sock.setsockopt(level, option, value)


def plain(value: object, limit: int = 300) -> str:
    """Text from the other side as it may be shown: printable, bounded, and without square
    brackets (the console would read them as markup)."""
    text = "".join(c if c.isprintable() else " " for c in str(value)[:limit])
    return text.replace("[", "(").replace("]", ")")


async def send(writer: asyncio.StreamWriter, message: dict[str, Any]) -> None:
    writer.write(json.dumps(message).encode() + b"\n")
    await writer.drain()


async def receive(reader: asyncio.StreamReader) -> dict[str, Any] | None:
    """The next message, or None at the end of the connection. RemoteError says what came
    instead of a message, as what the other side sent ("a line that is not JSON")."""
    try:
        line = await reader.readline()
    except (ValueError, asyncio.LimitOverrunError):
        raise RemoteError("a line too long") from None
    if not line:
        return None
    try:
        message = json.loads(line)
    except (ValueError, RecursionError):
        raise RemoteError("a line that is not JSON") from None
    if not isinstance(message, dict) or not isinstance(message.get("op"), str):
        raise RemoteError("a message without an op")
    return message


class RemoteProcess:
    """The receiver on the other host, as the session handles a local child: pid, returncode,
    wait, kill, terminate, a stdin for control lines and a stderr of relayed lines."""

    def __init__(self, link: RemoteLink, pid: int) -> None:
        self.link = link
        self.pid = pid
        self.returncode: int | None = None
        #: Why the receiver is gone when its agent went away (said instead of an exit code).
        self.lost_reason: str | None = None
        self._exited = asyncio.Event()
        self.stdin = _ControlPipe(link)
        self.stderr = _RelayedLines()

    def exited(self, code: int) -> None:
        if self.returncode is not None:
            return
        self.returncode = code
        self._exited.set()
        self.stderr.close()

    def lost(self, reason: str) -> None:
        """The agent went away with its receiver: the reason is its last stderr line, which the
        session shows with the exit (pushed before the exit, so that it is read first)."""
        if self.returncode is None:
            self.lost_reason = reason
            self.stderr.push(reason)
            self.exited(AGENT_GONE_EXIT)

    async def wait(self) -> int:
        await self._exited.wait()
        assert self.returncode is not None
        return self.returncode

    def kill(self) -> None:
        self.link.post({"op": "kill"})

    def terminate(self) -> None:
        self.link.post({"op": "terminate"})


class _ControlPipe:
    def __init__(self, link: RemoteLink) -> None:
        self.link = link

    def write(self, data: bytes) -> None:
        for line in data.decode().splitlines():
            self.link.post({"op": "control", "line": json.loads(line)})

    def close(self) -> None:
        self.link.post({"op": "close-stdin"})


class _RelayedLines:
    """The remote child's stderr lines, as an async iterator."""

    def __init__(self) -> None:
        self._lines: asyncio.Queue[bytes | None] = asyncio.Queue()
        self._closed = False

    def push(self, line: str) -> None:
        if not self._closed:
            self._lines.put_nowait(line.encode() + b"\n")

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._lines.put_nowait(None)

    def __aiter__(self) -> _RelayedLines:
        return self

    async def __anext__(self) -> bytes:
        line = await self._lines.get()
        if line is None:
            raise StopAsyncIteration
        return line


class RemoteLink:
    """The connection to one agent, for one session."""

    def __init__(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, where: str
    ) -> None:
        self.reader = reader
        self.writer = writer
        self.where = where  # the agent's ADDR:PORT, for messages
        self.host = ""  # the agent's host name
        self.address = ""  # the agent's address, as this side reached it
        self.process: RemoteProcess | None = None
        self.clock = {"offset_ns": 0, "error_ns": 0}
        #: Why the connection ended, once it has ("" while it is up).
        self.lost = ""
        #: Why the agent is ending the session, when it said so (it was stopped).
        self.agent_leaving = ""
        self._closing = False
        self._telemetry: Callable[[bytes], None] | None = None
        self._reply: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self._pump: asyncio.Task[None] | None = None
        self._pinger: asyncio.Task[None] | None = None

    @classmethod
    async def connect(cls, address: str, token: str) -> RemoteLink:
        host, port = split_address(address)
        try:
            reader, writer = await asyncio.wait_for(
                asyncio.open_connection(host, port, limit=MAX_LINE, family=socket.AF_INET),
                CONNECT_TIMEOUT_S,
            )
        except (OSError, TimeoutError) as exc:
            reason = getattr(exc, "strerror", None) or "no answer"
            raise RemoteError(f"cannot reach the agent at {host}:{port}: {reason}") from None
        keep_alive(writer.get_extra_info("socket"))
        link = cls(reader, writer, f"{host}:{port}")
        link.address = host
        try:
            await link._authenticate(token)
            await link._measure_clock()
        except BaseException:
            writer.transport.abort()
            raise
        link._pump = asyncio.create_task(link._read())
        link._pinger = asyncio.create_task(link._ping())
        return link

    async def _next(self, what: str) -> dict[str, Any]:
        """The agent's next message during the handshake, within its bound."""
        try:
            message = await asyncio.wait_for(receive(self.reader), HANDSHAKE_TIMEOUT_S)
        except TimeoutError:
            raise RemoteError(
                f"the agent at {self.where} did not answer {what} within {HANDSHAKE_TIMEOUT_S:g} s"
            ) from None
        except RemoteError as exc:
            raise RemoteError(f"the agent at {self.where} sent {exc}") from None
        except OSError as exc:
            raise RemoteError(
                f"the connection to the agent at {self.where} broke: {exc.strerror or exc}"
            ) from None
        if message is None:
            raise RemoteError(f"the agent at {self.where} closed the connection")
        if message["op"] == "refused":
            raise RemoteError(
                f"the agent at {self.where} refused: {plain(message.get('reason', '?'))}"
            )
        return message

    async def _authenticate(self, token: str) -> None:
        """Prove we hold the token and have the agent prove it too; the token stays here."""
        challenge = await self._next("the connection")
        if challenge["op"] != "challenge":
            raise RemoteError(f"the agent at {self.where} is not an ipc-explorer agent")
        if challenge.get("protocol") != PROTOCOL:
            raise RemoteError(
                f"the agent at {self.where} speaks protocol {plain(challenge.get('protocol'))}, "
                f"this side {PROTOCOL}: run the same ipc-explorer version on both hosts"
            )
        agent_nonce = challenge.get("nonce")
        if not is_nonce(agent_nonce):
            raise RemoteError(f"the agent at {self.where} sent a challenge without a nonce")
        assert isinstance(agent_nonce, str)
        driver_nonce = new_nonce()
        await self._send_now(
            {
                "op": "hello",
                "protocol": PROTOCOL,
                "nonce": driver_nonce,
                "proof": proof(token, "driver", agent_nonce, driver_nonce),
            }
        )
        welcome = await self._next("the token")
        if welcome["op"] != "welcome":
            raise RemoteError(f"the agent at {self.where} answered the token with nonsense")
        expected = proof(token, "agent", agent_nonce, driver_nonce)
        if not proof_matches(expected, welcome.get("proof")):
            raise RemoteError(
                f"the agent at {self.where} does not hold the shared token: not the agent "
                "meant, or a different token there"
            )
        self.host = plain(welcome.get("host") or self.address, 100)

    async def _measure_clock(self) -> None:
        """The agent's clock minus ours, from the exchange with the shortest round trip
        (its half is the error bound): NTP's rule, on CLOCK_MONOTONIC."""
        best: tuple[int, int] | None = None
        for _ in range(CLOCK_SAMPLES):
            t0 = time.monotonic_ns()
            await self._send_now({"op": "clock"})
            answer = await self._next("the clock exchange")
            t2 = time.monotonic_ns()
            stamp = answer.get("t")
            if answer["op"] != "clock" or type(stamp) is not int:
                raise RemoteError(f"the agent at {self.where} did not answer the clock exchange")
            offset = stamp - (t0 + t2) // 2
            if best is None or t2 - t0 < best[1]:
                best = (offset, t2 - t0)
        assert best is not None
        self.clock = {"offset_ns": best[0], "error_ns": best[1] // 2}

    async def _send_now(self, message: dict[str, Any]) -> None:
        try:
            await asyncio.wait_for(send(self.writer, message), HANDSHAKE_TIMEOUT_S)
        except (OSError, TimeoutError) as exc:
            reason = getattr(exc, "strerror", None) or "it does not read"
            raise RemoteError(f"cannot talk to the agent at {self.where}: {reason}") from None

    async def _read(self) -> None:
        """Everything the agent sends once the session runs; it never ends without saying
        why (to the receiver's exit and to whoever waits for an answer)."""
        reason = "it closed the connection"
        try:
            while True:
                message = await asyncio.wait_for(receive(self.reader), IDLE_TIMEOUT_S)
                if message is None:
                    break
                self._dispatch(message)
        except TimeoutError:
            reason = f"no word from it for {IDLE_TIMEOUT_S:g} s"
        except RemoteError as exc:
            reason = f"it sent {exc}"
        except OSError as exc:
            reason = f"the connection broke: {exc.strerror or exc}"
        except Exception as exc:  # anything else it sent that we cannot use: said, not raised
            reason = f"it sent something this side cannot use ({type(exc).__name__})"
        self._lose(reason)

    def _dispatch(self, message: dict[str, Any]) -> None:
        op = message["op"]
        if op == "pong":
            return
        if op == "telemetry":
            data = message.get("data")
            try:
                decoded = base64.b64decode(data, validate=True) if isinstance(data, str) else None
            except binascii.Error:
                decoded = None
            if decoded is None:
                raise RemoteError("telemetry that is not base64")
            if self._telemetry is not None:
                self._telemetry(decoded)
        elif op == "stderr":
            if self.process is not None:
                self.process.stderr.push(plain(message.get("line", ""), 500))
        elif op == "exit":
            code = message.get("code")
            if type(code) is not int:
                raise RemoteError("an exit without a status")
            if self.process is not None and self.agent_leaving:
                self.process.lost(f"the agent at {self.where} went away: {self.agent_leaving}")
            elif self.process is not None:
                self.process.exited(code)
        elif op == "closing":
            self.agent_leaving = plain(message.get("reason") or "it ended the session", 200)
        else:
            self._reply.put_nowait(message)

    def _lose(self, reason: str) -> None:
        if self._closing and reason == "it closed the connection":
            reason = "the session closed"
        elif self.agent_leaving:
            reason = self.agent_leaving
        self.lost = reason
        if self._pinger is not None:
            self._pinger.cancel()
        if self.process is not None:
            self.process.lost(f"the agent at {self.where} went away: {reason}")
        self._reply.put_nowait({"op": "gone"})

    async def _ping(self) -> None:
        while not self.lost:
            await asyncio.sleep(PING_INTERVAL_S)
            self.post({"op": "ping"})

    async def _request(
        self, message: dict[str, Any], answer_op: str, what: str, timeout: float
    ) -> dict[str, Any]:
        """Send a request and wait for its answer (or the link's end) within ``timeout``."""
        if self.lost:
            raise RemoteError(f"the agent at {self.where} went away: {self.lost}")
        self.post(message)
        try:
            answer = await asyncio.wait_for(self._reply.get(), timeout)
        except TimeoutError:
            raise RemoteError(
                f"the agent at {self.where} did not {what} within {timeout:g} s"
            ) from None
        if answer["op"] == "gone":
            raise RemoteError(f"the agent at {self.where} went away: {self.lost}")
        if answer["op"] == "error":
            raise RemoteError(f"the agent could not {what}: {plain(answer.get('message', '?'))}")
        if answer["op"] != answer_op:
            raise RemoteError(f"the agent at {self.where} answered {plain(answer['op'], 40)!r}")
        return answer

    async def start_receiver(
        self, config: dict[str, Any], telemetry: Callable[[bytes], None]
    ) -> RemoteProcess:
        self._telemetry = telemetry
        settings = {k: config[k] for k in RECEIVER_SETTINGS if k in config}
        request = {"op": "start", "role": "receiver", "config": settings}
        answer = await self._request(request, "started", "start the receiver", START_TIMEOUT_S)
        pid = answer.get("pid")
        if type(pid) is not int:
            raise RemoteError(f"the agent at {self.where} started a receiver without a pid")
        self.process = RemoteProcess(self, pid)
        if self.lost:  # gone between its answer and now
            self.process.lost(f"the agent at {self.where} went away: {self.lost}")
        return self.process

    async def open_channel(self, request: dict[str, Any]) -> dict[str, Any]:
        """Have the agent create the channel's receiving end on its host; its plan."""
        answer = await self._request(
            {"op": "open", **request}, "opened", "open the channel", OPEN_TIMEOUT_S
        )
        plan = answer.get("plan")
        try:
            readable = ChannelPlan.from_json(plan).mechanism == request["mechanism"]  # type: ignore[arg-type]
        except (KeyError, TypeError, ValueError, AttributeError):
            readable = False
        if not readable:
            raise RemoteError(f"the agent at {self.where} sent a channel plan that does not fit")
        assert isinstance(plan, dict)
        return plan

    def post(self, message: dict[str, Any]) -> None:
        """Send without waiting (control lines, kill): the connection keeps the order."""
        if self.lost or self.writer.is_closing():
            return
        try:
            self.writer.write(json.dumps(message).encode() + b"\n")
        except (OSError, RuntimeError):
            pass

    async def close(self) -> None:
        self._closing = True
        if self._pinger is not None:
            self._pinger.cancel()
        self.post({"op": "bye"})
        try:
            await asyncio.wait_for(self.writer.drain(), 2)
        except (OSError, TimeoutError):
            pass
        self.writer.close()
        if self._pump is not None:
            try:
                await asyncio.wait_for(self._pump, 3)
            except (TimeoutError, asyncio.CancelledError):
                self._pump.cancel()
