"""The other host's side of a session: ``ipc-explorer remote --listen ADDR:PORT``.

It waits for a driving ``run --remote`` (or app), has it prove it holds the shared token (and
proves it back), tells its clock, opens the channel's receiving end on its own address, starts
the project's own receiver program with settings it has validated itself, relays the
receiver's telemetry and exit, and removes everything when the driving side says goodbye or
disappears (closed, or silent for IDLE_TIMEOUT_S). It listens on 127.0.0.1 unless told
otherwise, takes a bounded number of sessions at once, and bounds what a connection that has
not proved the token may cost it (a small line, a few seconds, a few such connections).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import os
import re
import secrets
import shutil
import socket
import tempfile
import time
import urllib.parse
from collections.abc import Callable
from dataclasses import fields
from pathlib import Path
from typing import Any

from ipc_explorer.codecs import codec_names
from ipc_explorer.session.config import PATTERNS
from ipc_explorer.session.remote import (
    HANDSHAKE_TIMEOUT_S,
    IDLE_TIMEOUT_S,
    PROTOCOL,
    REMOTE_MECHANISMS,
    RemoteError,
    is_nonce,
    keep_alive,
    new_nonce,
    proof,
    proof_matches,
    receive,
    send,
)
from ipc_explorer.session.spawn import read_available, start_child
from ipc_explorer.transports import ChannelPlan, TransportError, TransportOptions, get_transport
from ipc_explorer.transports.amqp import AUTH_VARIABLE as BROKER_AUTH_SECRET
from ipc_explorer.transports.amqp import URL_VARIABLE as BROKER_URL_SECRET

#: Every request an agent takes is small (the driving side sends only the settings the agent
#: reads): a line longer than this is refused, and a connection buffers at most twice this.
MAX_REQUEST_LINE = 8 * 1024
#: Connections that have not proved the token yet, at once; more are refused at once.
MAX_PENDING = 16
#: Options a driving side may set on the receiving end (the host is always the agent's own),
#: each with the check its value must pass.
MIME_TYPE = re.compile(r"[A-Za-z0-9!#$&^_.+-]{1,60}/[A-Za-z0-9!#$&^_.+-]{1,60}")
ALLOWED_OPTIONS: dict[str, Callable[[object], bool]] = {
    "port": lambda v: type(v) is int and 0 <= v <= 65535,
    "nagle": lambda v: type(v) is bool,
    "split_writes": lambda v: type(v) is bool,
    "content_type": lambda v: isinstance(v, str) and MIME_TYPE.fullmatch(v) is not None,
    "broker": lambda v: isinstance(v, str) and len(v) <= 2048 and v.isprintable(),
    "prefetch": lambda v: type(v) is int and 0 <= v <= 65535,
    "auto_ack": lambda v: type(v) is bool,
}
#: The only secrets a driving side may give are BROKER_URL_SECRET and BROKER_AUTH_SECRET, for
#: amqp: what the amqp transport reads from the environment. Anything else would land in the
#: receiver's environment (PYTHONPATH, LD_PRELOAD, ...).
BROKER_NEEDED = "amqp across hosts needs --broker that both hosts reach"
LIMITS = {"size": 16 * 1024 * 1024, "count": 10**9, "expect_from": 10**9}
#: Control lines the receiver understands, with the flags each may carry.
RECEIVER_CONTROL = {
    "start": (),
    "pause": (),
    "resume": (),
    "report": (),
    "stop": (),
    "step_mode": ("on",),
    "step": ("free",),
}


class AgentRefusal(Exception):
    """A request the agent will not carry out: said to the driving side in one line."""


def _shown(value: object) -> str:
    """A value from the other side, short enough to quote in one line."""
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


class Agent:
    def __init__(self, token: str, max_sessions: int, say: Callable[[str], None]) -> None:
        self.token = token
        self.slots = asyncio.Semaphore(max_sessions)
        self.max_sessions = max_sessions
        self.say = say
        self.sessions: set[AgentSession] = set()
        self.pending = 0
        #: Every connection's handler and its writer, to end them all when the agent stops.
        self.connections: dict[asyncio.Task[Any], asyncio.StreamWriter] = {}

    async def serve(self, host: str, port: int) -> None:
        server = await asyncio.start_server(
            self._connection, host, port, limit=MAX_REQUEST_LINE, family=socket.AF_INET
        )
        address = server.sockets[0].getsockname()
        self.say(f"ipc-explorer agent listening on {address[0]}:{address[1]}")
        try:
            await server.serve_forever()
        finally:
            server.close()
            for session in list(self.sessions):
                await session.close(notice="the agent was stopped")
            for writer in self.connections.values():
                writer.transport.abort()
            if self.connections:  # each ends on its own once its connection is gone
                await asyncio.wait(set(self.connections), timeout=5)

    async def _connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer = writer.get_extra_info("peername")
        who = f"{peer[0]}:{peer[1]}" if peer else "?"
        task = asyncio.current_task()
        assert task is not None
        self.connections[task] = writer
        try:
            await self._serve(reader, writer, who)
        except (OSError, UnicodeError) as exc:  # reset, broken, timed out: the session is over
            self.say(f"{who}: connection ended ({type(exc).__name__})")
        except Exception as exc:  # a fault of ours: said in one line, never a traceback
            self.say(f"{who}: connection ended on an unexpected {type(exc).__name__}")
        except asyncio.CancelledError:
            # The agent is stopping (its sessions are closed by then): a handler that ended
            # cancelled would have asyncio print a traceback for it.
            pass
        finally:
            del self.connections[task]
            _hang_up(writer)

    async def _serve(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, who: str
    ) -> None:
        keep_alive(writer.get_extra_info("socket"))
        if self.pending >= MAX_PENDING:
            await _refuse(writer, "too many connections are waiting to authenticate; try again")
            self.say(f"refused {who}: {MAX_PENDING} connections waiting to authenticate")
            return
        self.pending += 1
        try:
            nonces = await asyncio.wait_for(
                self._authenticate(reader, writer, who), HANDSHAKE_TIMEOUT_S
            )
        except TimeoutError:
            nonces = None
            await _refuse(writer, f"no hello within {HANDSHAKE_TIMEOUT_S:g} s")
            self.say(f"refused {who}: no hello within {HANDSHAKE_TIMEOUT_S:g} s")
        finally:
            self.pending -= 1
        if nonces is None:
            return
        if self.slots.locked():
            await _refuse(writer, f"this agent runs {self.max_sessions} sessions already")
            self.say(f"refused {who}: {self.max_sessions} sessions already")
            return
        agent_nonce, driver_nonce = nonces
        async with self.slots:
            session = AgentSession(reader, writer, who, self.say)
            self.sessions.add(session)
            try:
                await send(
                    writer,
                    {
                        "op": "welcome",
                        "host": socket.gethostname(),
                        "proof": proof(self.token, "agent", agent_nonce, driver_nonce),
                    },
                )
                await session.run()
            finally:
                self.sessions.discard(session)
                await session.close()

    async def _authenticate(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, who: str
    ) -> tuple[str, str] | None:
        """Both nonces once the driving side has proved it holds the token; None after a
        refusal (said to it in one line)."""
        agent_nonce = new_nonce()
        await send(writer, {"op": "challenge", "protocol": PROTOCOL, "nonce": agent_nonce})
        try:
            hello = await receive(reader)
        except RemoteError:
            hello = None
        if hello is not None and hello["op"] == "hello" and hello.get("protocol") != PROTOCOL:
            await _refuse(
                writer,
                f"this agent speaks protocol {PROTOCOL}, the driving side "
                f"{_shown(hello.get('protocol'))}: run the same ipc-explorer version on both hosts",
            )
            return None
        driver_nonce = hello.get("nonce") if hello is not None else None
        if (
            hello is None
            or hello["op"] != "hello"
            or not is_nonce(driver_nonce)
            or not proof_matches(
                proof(self.token, "driver", agent_nonce, str(driver_nonce)), hello.get("proof")
            )
        ):
            await _refuse(writer, "wrong or missing token")
            self.say(f"refused {who}: wrong or missing token")
            return None
        return agent_nonce, str(driver_nonce)


async def _refuse(writer: asyncio.StreamWriter, reason: str) -> None:
    with contextlib.suppress(OSError, TimeoutError):
        await asyncio.wait_for(send(writer, {"op": "refused", "reason": reason}), 2)
    _hang_up(writer)


def _hang_up(writer: asyncio.StreamWriter) -> None:
    """Close the connection; what is still queued for a side that does not read (or has
    vanished) is dropped rather than kept until the kernel gives up."""
    if writer.transport.get_write_buffer_size():
        writer.transport.abort()
    else:
        writer.close()


class AgentSession:
    """One driving side: its channel end, its receiver, its relay."""

    def __init__(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        who: str,
        say: Callable[[str], None],
    ) -> None:
        self.reader = reader
        self.writer = writer
        self.who = who
        self.say = say
        self.plan: ChannelPlan | None = None
        self.workdir: Path | None = None
        self.proc: asyncio.subprocess.Process | None = None
        self.telemetry_fd: int | None = None
        self.tasks: list[asyncio.Task[Any]] = []
        self.closed = False

    async def run(self) -> None:
        """Requests until a goodbye, the end of the connection, or IDLE_TIMEOUT_S of silence
        (the driving side pings every few seconds: silence means it or the link is gone)."""
        while True:
            try:
                message = await asyncio.wait_for(receive(self.reader), IDLE_TIMEOUT_S)
            except TimeoutError:
                self.say(f"{self.who}: no word for {IDLE_TIMEOUT_S:g} s, the driving side is gone")
                return
            except RemoteError as exc:
                await self._answer_error(f"the agent received {exc}")
                continue
            if message is None or message["op"] == "bye":
                return
            try:
                await self._handle(message)
            except (AgentRefusal, TransportError) as exc:
                await self._answer_error(str(exc) or type(exc).__name__)
            except OSError as exc:
                await self._answer_error(f"{message['op']}: {exc.strerror or exc}")
            except Exception as exc:  # a fault of ours: one line to each side, no traceback
                self.say(f"{self.who}: {message['op']} failed on {type(exc).__name__}: {exc}")
                await self._answer_error(f"{message['op']} failed on {type(exc).__name__}")

    async def _answer_error(self, text: str) -> None:
        with contextlib.suppress(OSError):
            await send(self.writer, {"op": "error", "message": text})

    async def _handle(self, message: dict[str, Any]) -> None:
        op = message["op"]
        if op == "ping":
            await send(self.writer, {"op": "pong"})
        elif op == "clock":
            await send(self.writer, {"op": "clock", "t": time.monotonic_ns()})
        elif op == "open":
            plan = await self._open(message)
            await send(self.writer, {"op": "opened", "plan": plan.to_json()})
        elif op == "start":
            pid = await self._start(message.get("config"))
            await send(self.writer, {"op": "started", "pid": pid})
        elif op == "control" and self.proc is not None and self.proc.stdin is not None:
            line = _checked_control(message.get("line"))
            self.proc.stdin.write((json.dumps(line) + "\n").encode())
        elif op == "close-stdin" and self.proc is not None and self.proc.stdin is not None:
            self.proc.stdin.close()
        elif op in ("kill", "terminate") and self.proc is not None:
            with contextlib.suppress(ProcessLookupError):
                self.proc.kill() if op == "kill" else self.proc.terminate()
        else:
            raise AgentRefusal(f"unknown or untimely request {_shown(op)}")

    async def _open(self, message: dict[str, Any]) -> ChannelPlan:
        if self.plan is not None:
            raise AgentRefusal("this session has a channel already")
        mechanism = message.get("mechanism")
        if not isinstance(mechanism, str) or mechanism not in REMOTE_MECHANISMS:
            raise AgentRefusal(
                f"{_shown(mechanism)} does not cross hosts; one of {', '.join(REMOTE_MECHANISMS)}"
            )
        duplex = message.get("duplex", False)
        if type(duplex) is not bool:
            raise AgentRefusal("duplex must be true or false")
        options = TransportOptions(
            **_checked_options(message.get("options")),
            host=self.writer.get_extra_info("sockname")[0],  # where the driving side reached us
        )
        # A broker's credentials, kept out of every log and plan; nothing else reaches the
        # receiver's environment.
        options.secrets = _checked_secrets(mechanism, message.get("secrets"))
        transport = get_transport(mechanism)
        options = await transport.provision(options)
        self.workdir = Path(tempfile.mkdtemp(prefix="ipcx-agent-"))
        self.plan = transport.create(options, self.workdir, secrets.token_hex(4), duplex)
        self.say(f"{self.who}: {mechanism} channel open on {options.host}")
        return self.plan

    async def _start(self, config: object) -> int:
        if self.plan is None or self.proc is not None:
            raise AgentRefusal("open the channel first, and start one receiver")
        checked = _checked_config(config)
        checked["plan"] = self.plan.to_json()  # ours, whatever the driving side sent
        proc, read_fd = await start_child("receiver", checked, self.plan)
        self.plan.close_fds()
        self.proc = proc
        self.telemetry_fd = read_fd
        os.set_blocking(read_fd, False)
        asyncio.get_running_loop().add_reader(read_fd, self._relay_telemetry)
        self.tasks.append(asyncio.create_task(self._relay_stderr(proc)))
        self.tasks.append(asyncio.create_task(self._relay_exit(proc)))
        self.say(f"{self.who}: receiver {proc.pid} started")
        return proc.pid

    def _relay_telemetry(self) -> None:
        fd = self.telemetry_fd
        if fd is None:
            return
        data = read_available(fd)
        if data is None:
            return
        if not data:
            self._stop_telemetry()
            return
        encoded = base64.b64encode(data).decode()
        if not self.writer.is_closing():
            self.writer.write(json.dumps({"op": "telemetry", "data": encoded}).encode() + b"\n")

    def _stop_telemetry(self) -> None:
        fd, self.telemetry_fd = self.telemetry_fd, None
        if fd is not None:
            with contextlib.suppress(ValueError, RuntimeError):
                asyncio.get_running_loop().remove_reader(fd)
            os.close(fd)

    async def _relay_stderr(self, proc: asyncio.subprocess.Process) -> None:
        assert proc.stderr is not None
        with contextlib.suppress(OSError):
            async for line in proc.stderr:
                text = line.decode(errors="replace")[:500]
                await send(self.writer, {"op": "stderr", "line": text})

    async def _relay_exit(self, proc: asyncio.subprocess.Process) -> None:
        code = await proc.wait()
        while self.telemetry_fd is not None:  # the last records, before the exit is said
            self._relay_telemetry()
            await asyncio.sleep(0.01)
        with contextlib.suppress(OSError):
            await send(self.writer, {"op": "exit", "code": code})

    async def close(self, notice: str = "") -> None:
        """Whatever happened: the receiver stopped, the channel's objects removed. A
        ``notice`` tells the driving side why first, so that it says so rather than report
        its receiver killed."""
        if self.closed:
            return
        self.closed = True
        if notice:
            with contextlib.suppress(OSError, TimeoutError):
                await asyncio.wait_for(send(self.writer, {"op": "closing", "reason": notice}), 2)
        if self.proc is not None and self.proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                self.proc.kill()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.proc.wait(), 3)
        self._stop_telemetry()
        for task in self.tasks:
            task.cancel()
        if self.plan is not None:
            self.plan.close_fds()
            try:
                get_transport(self.plan.mechanism).destroy(self.plan)
            except Exception as exc:  # whatever is left expires on its own (a broker's queue)
                self.say(f"{self.who}: removing the channel failed on {type(exc).__name__}")
        if self.workdir is not None:
            shutil.rmtree(self.workdir, ignore_errors=True)
        _hang_up(self.writer)
        self.say(f"{self.who}: session over, everything removed")


def _checked_options(asked: object) -> dict[str, Any]:
    """The channel options a driving side may set, each of the type and range it must be;
    the others it sends (its own side's) are left out."""
    if asked is None:
        return {}
    if not isinstance(asked, dict):
        raise AgentRefusal("options must be an object")
    unknown = set(asked) - {f.name for f in fields(TransportOptions)}
    if unknown:
        raise AgentRefusal(f"unknown options {_shown(sorted(unknown))}")
    checked = {}
    for name, valid in ALLOWED_OPTIONS.items():
        if name in asked:
            if not valid(asked[name]):
                raise AgentRefusal(f"option {name} {_shown(asked[name])} is not valid")
            checked[name] = asked[name]
    return checked


def _checked_secrets(mechanism: str, given: object) -> dict[str, str]:
    """The environment the receiver may get from the driving side: an amqp broker's URL
    (and its management authorization), nothing else, for nothing else."""
    if given is None:
        given = {}
    if not isinstance(given, dict):
        raise AgentRefusal("secrets must be an object")
    if mechanism != "amqp":
        if given:
            raise AgentRefusal(f"{mechanism} takes no secrets: refused {_shown(sorted(given))}")
        return {}
    unknown = set(given) - {BROKER_URL_SECRET, BROKER_AUTH_SECRET}
    if unknown:
        raise AgentRefusal(
            f"the only secret taken is the broker's URL ({BROKER_URL_SECRET}): refused "
            f"{_shown(sorted(unknown))}"
        )
    url = given.get(BROKER_URL_SECRET)
    if not url:
        raise AgentRefusal(BROKER_NEEDED)
    if not _is_broker_url(url):
        raise AgentRefusal(f"{BROKER_URL_SECRET} must be an amqp:// or amqps:// URL with a host")
    checked = {BROKER_URL_SECRET: url}
    auth = given.get(BROKER_AUTH_SECRET)
    if auth is not None:
        if not (isinstance(auth, str) and re.fullmatch(r"Basic [A-Za-z0-9+/]{1,1000}={0,2}", auth)):
            raise AgentRefusal(f"{BROKER_AUTH_SECRET} must be a Basic authorization")
        checked[BROKER_AUTH_SECRET] = auth
    return checked


def _is_broker_url(url: object) -> bool:
    if not isinstance(url, str) or len(url) > 2048 or not url.isprintable():
        return False
    try:
        parts = urllib.parse.urlsplit(url)
        parts.port  # noqa: B018  (raises on a port that is not a number)
    except ValueError:
        return False
    return parts.scheme in ("amqp", "amqps") and bool(parts.hostname)


def _checked_config(config: object) -> dict[str, Any]:
    """The receiver's settings, each checked here: the agent starts only its own program with
    values it accepts, whatever the other side sends."""
    if not isinstance(config, dict):
        raise AgentRefusal("the receiver's config must be an object")
    fmt = config.get("format")
    if not isinstance(fmt, str) or fmt not in codec_names():
        raise AgentRefusal(f"unknown format {_shown(fmt)}")
    pattern = config.get("pattern")
    if not isinstance(pattern, str) or pattern not in PATTERNS:
        raise AgentRefusal(f"unknown pattern {_shown(pattern)}")
    checked: dict[str, Any] = {"format": fmt, "pattern": pattern}
    for name in ("size", "count", "expect_from"):
        value = config.get(name)
        if value is not None and not (type(value) is int and 0 <= value <= LIMITS[name]):
            raise AgentRefusal(f"{name} {_shown(value)} is out of range")
        checked[name] = value
    checked["expect_from"] = checked["expect_from"] or 0
    offset = config.get("clock_offset_ns", 0)
    if type(offset) is not int or abs(offset) >= 2**62:
        raise AgentRefusal("clock_offset_ns must be an integer")
    checked["clock_offset_ns"] = offset
    step = config.get("step", False)
    if type(step) is not bool:
        raise AgentRefusal("step must be true or false")
    checked.update(step=step, rate=None, cpus=None, nice=0)
    return checked


def _checked_control(line: object) -> dict[str, Any]:
    """A control line for the receiver, rebuilt from what it understands."""
    op = line.get("op") if isinstance(line, dict) else None
    if not isinstance(op, str) or op not in RECEIVER_CONTROL:
        raise AgentRefusal(f"not a receiver's control line: {_shown(line)}")
    assert isinstance(line, dict)
    checked: dict[str, Any] = {"op": op}
    for flag in RECEIVER_CONTROL[op]:
        value = line.get(flag, False)
        if type(value) is not bool:
            raise AgentRefusal(f"{op}: {flag} must be true or false")
        checked[flag] = value
    return checked
