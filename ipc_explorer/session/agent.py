"""The other host's side of a session: ``ipc-explorer remote --listen ADDR:PORT``.

It waits for a driving ``run --remote`` (or app), checks the shared token, tells its clock,
opens the channel's receiving end on its own address, starts the project's own receiver
program with settings it has validated itself, relays the receiver's telemetry and exit, and
removes everything when the driving side says goodbye or disappears. It listens on
127.0.0.1 unless told otherwise, and takes a bounded number of sessions at once.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hmac
import json
import os
import secrets
import shutil
import socket
import tempfile
import time
from collections.abc import Callable
from dataclasses import fields
from pathlib import Path
from typing import Any

from ipc_explorer.codecs import codec_names
from ipc_explorer.session.config import PATTERNS
from ipc_explorer.session.remote import (
    MAX_LINE,
    PROTOCOL,
    REMOTE_MECHANISMS,
    RemoteError,
    receive,
    send,
)
from ipc_explorer.session.spawn import read_available, start_child
from ipc_explorer.transports import ChannelPlan, TransportError, TransportOptions, get_transport

#: Options a driving side may set on the receiving end (the host is always the agent's own).
ALLOWED_OPTIONS = {
    "port",
    "nagle",
    "split_writes",
    "content_type",
    "broker",
    "prefetch",
    "auto_ack",
}
LIMITS = {"size": 16 * 1024 * 1024, "count": 10**9}


class AgentRefusal(Exception):
    """A request the agent will not carry out: said to the driving side in one line."""


class Agent:
    def __init__(self, token: str, max_sessions: int, say: Callable[[str], None]) -> None:
        self.token = token
        self.slots = asyncio.Semaphore(max_sessions)
        self.max_sessions = max_sessions
        self.say = say
        self.sessions: set[AgentSession] = set()

    async def serve(self, host: str, port: int) -> None:
        server = await asyncio.start_server(self._connection, host, port, limit=MAX_LINE)
        address = server.sockets[0].getsockname()
        self.say(f"ipc-explorer agent listening on {address[0]}:{address[1]}")
        try:
            async with server:
                await server.serve_forever()
        finally:
            for session in list(self.sessions):
                await session.close()

    async def _connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer = writer.get_extra_info("peername")
        who = f"{peer[0]}:{peer[1]}" if peer else "?"
        try:
            hello = await asyncio.wait_for(receive(reader), 10)
        except (TimeoutError, RemoteError):
            hello = None
        if not hello or hello["op"] != "hello" or not self._token_ok(hello.get("token")):
            await _refuse(writer, "wrong or missing token")
            self.say(f"refused {who}: wrong or missing token")
            return
        if hello.get("protocol") != PROTOCOL:
            await _refuse(writer, f"protocol {hello.get('protocol')} is not {PROTOCOL}")
            return
        if self.slots.locked():
            await _refuse(writer, f"this agent runs {self.max_sessions} sessions already")
            self.say(f"refused {who}: {self.max_sessions} sessions already")
            return
        async with self.slots:
            session = AgentSession(reader, writer, who, self.say)
            self.sessions.add(session)
            try:
                await send(writer, {"op": "welcome", "host": socket.gethostname()})
                await session.run()
            finally:
                self.sessions.discard(session)
                await session.close()

    def _token_ok(self, given: object) -> bool:
        return isinstance(given, str) and hmac.compare_digest(given.encode(), self.token.encode())


async def _refuse(writer: asyncio.StreamWriter, reason: str) -> None:
    with contextlib.suppress(OSError, ConnectionError):
        await send(writer, {"op": "refused", "reason": reason})
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
        while True:
            message = await receive(self.reader)
            if message is None or message["op"] == "bye":
                return
            try:
                await self._handle(message)
            except (AgentRefusal, TransportError, OSError, ValueError, KeyError) as exc:
                await send(self.writer, {"op": "error", "message": str(exc) or type(exc).__name__})

    async def _handle(self, message: dict[str, Any]) -> None:
        op = message["op"]
        if op == "clock":
            await send(self.writer, {"op": "clock", "t": time.monotonic_ns()})
        elif op == "open":
            plan = await self._open(message)
            await send(self.writer, {"op": "opened", "plan": plan.to_json()})
        elif op == "start":
            pid = await self._start(message.get("config") or {})
            await send(self.writer, {"op": "started", "pid": pid})
        elif op == "control" and self.proc is not None and self.proc.stdin is not None:
            line = message.get("line")
            if not isinstance(line, dict):
                raise AgentRefusal("a control line must be an object")
            self.proc.stdin.write((json.dumps(line) + "\n").encode())
        elif op == "close-stdin" and self.proc is not None and self.proc.stdin is not None:
            self.proc.stdin.close()
        elif op in ("kill", "terminate") and self.proc is not None:
            with contextlib.suppress(ProcessLookupError):
                self.proc.kill() if op == "kill" else self.proc.terminate()
        else:
            raise AgentRefusal(f"unknown or untimely request {op!r}")

    async def _open(self, message: dict[str, Any]) -> ChannelPlan:
        if self.plan is not None:
            raise AgentRefusal("this session has a channel already")
        mechanism = message.get("mechanism")
        if mechanism not in REMOTE_MECHANISMS:
            raise AgentRefusal(f"{mechanism!r} does not cross hosts; one of {REMOTE_MECHANISMS}")
        asked = message.get("options") or {}
        unknown = set(asked) - {f.name for f in fields(TransportOptions)}
        if unknown:
            raise AgentRefusal(f"unknown options {sorted(unknown)}")
        options = TransportOptions(
            **{k: v for k, v in asked.items() if k in ALLOWED_OPTIONS},
            host=self.writer.get_extra_info("sockname")[0],  # where the driving side reached us
        )
        secrets_given = message.get("secrets") or {}
        if secrets_given:  # a broker's credentials, kept out of every log and plan
            options.secrets = {str(k): str(v) for k, v in secrets_given.items()}
        transport = get_transport(mechanism)
        options = await transport.provision(options)
        self.workdir = Path(tempfile.mkdtemp(prefix="ipcx-agent-"))
        self.plan = transport.create(
            options, self.workdir, secrets.token_hex(4), bool(message.get("duplex"))
        )
        self.say(f"{self.who}: {mechanism} channel open on {options.host}")
        return self.plan

    async def _start(self, config: dict[str, Any]) -> int:
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
        self.writer.write(json.dumps({"op": "telemetry", "data": encoded}).encode() + b"\n")

    def _stop_telemetry(self) -> None:
        fd, self.telemetry_fd = self.telemetry_fd, None
        if fd is not None:
            with contextlib.suppress(ValueError, RuntimeError):
                asyncio.get_running_loop().remove_reader(fd)
            os.close(fd)

    async def _relay_stderr(self, proc: asyncio.subprocess.Process) -> None:
        assert proc.stderr is not None
        async for line in proc.stderr:
            await send(self.writer, {"op": "stderr", "line": line.decode(errors="replace")[:500]})

    async def _relay_exit(self, proc: asyncio.subprocess.Process) -> None:
        code = await proc.wait()
        while self.telemetry_fd is not None:  # the last records, before the exit is said
            self._relay_telemetry()
            await asyncio.sleep(0.01)
        with contextlib.suppress(OSError, ConnectionError):
            await send(self.writer, {"op": "exit", "code": code})

    async def close(self) -> None:
        """Whatever happened: the receiver stopped, the channel's objects removed."""
        if self.closed:
            return
        self.closed = True
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
            get_transport(self.plan.mechanism).destroy(self.plan)
        if self.workdir is not None:
            shutil.rmtree(self.workdir, ignore_errors=True)
        with contextlib.suppress(OSError):
            self.writer.close()
        self.say(f"{self.who}: session over, everything removed")


def _checked_config(config: dict[str, Any]) -> dict[str, Any]:
    """The receiver's settings, each checked here: the agent starts only its own program with
    values it accepts, whatever the other side sends."""
    fmt = config.get("format")
    if fmt not in codec_names():
        raise AgentRefusal(f"unknown format {fmt!r}")
    pattern = config.get("pattern")
    if pattern not in PATTERNS:
        raise AgentRefusal(f"unknown pattern {pattern!r}")
    checked: dict[str, Any] = {"format": fmt, "pattern": pattern}
    for name in ("size", "count"):
        value = config.get(name)
        if value is not None and not (isinstance(value, int) and 0 <= value <= LIMITS[name]):
            raise AgentRefusal(f"{name} {value!r} is out of range")
        checked[name] = value
    for name in ("expect_from", "clock_offset_ns"):
        value = config.get(name, 0)
        if not isinstance(value, int):
            raise AgentRefusal(f"{name} must be an integer")
        checked[name] = value
    checked.update(step=bool(config.get("step")), rate=None, cpus=None, nice=0)
    return checked
