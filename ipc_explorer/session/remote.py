"""A session whose receiver runs on another host: the driving side of ``run --remote``.

The other host runs ``ipc-explorer remote --listen ADDR:PORT`` (session/agent.py). Over one
TCP connection, one JSON object a line: a shared token first (never on a command line), then
a clock exchange (the agents' CLOCK_MONOTONIC is not ours: an NTP-style offset with its error
bound, the best of several), then the receiver's start: the agent opens the receiving end of
the channel on its own address, starts the receiver there and relays its telemetry and exit;
control lines go the other way. The local sender gets the plan with the agent's address.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ipc_explorer.transports import TransportError

#: Mechanisms that can cross hosts: the network ones (amqp through a broker both can reach).
REMOTE_MECHANISMS = ("tcp", "udp", "http", "amqp")
TOKEN_VARIABLE = "IPC_EXPLORER_TOKEN"
PROTOCOL = 1
#: The largest line either side accepts (a telemetry record is well under).
MAX_LINE = 8 * 1024 * 1024
CLOCK_SAMPLES = 16
CONNECT_TIMEOUT_S = 5.0


class RemoteError(TransportError):
    """The other host's agent refused, went away or answered nonsense: the text says which."""


def load_token(token_file: str | None = None) -> str:
    """The shared token: from --token-file, else from IPC_EXPLORER_TOKEN."""
    if token_file:
        try:
            token = Path(token_file).read_text().strip()
        except OSError as exc:
            raise RemoteError(f"cannot read the token file {token_file}: {exc.strerror}") from None
    else:
        token = os.environ.get(TOKEN_VARIABLE, "").strip()
    if not token:
        raise RemoteError(
            f"a remote agent needs a shared token: set {TOKEN_VARIABLE} or give --token-file"
        )
    return token


def split_address(text: str, default_host: str = "127.0.0.1") -> tuple[str, int]:
    host, _, port = text.rpartition(":")
    try:
        number = int(port)
    except ValueError:
        raise RemoteError(f"expected ADDR:PORT, got {text!r}") from None
    if not 0 < number < 65536:
        raise RemoteError(f"port {number} is out of range in {text!r}")
    return (host.strip("[]") or default_host), number


async def send(writer: asyncio.StreamWriter, message: dict[str, Any]) -> None:
    writer.write(json.dumps(message).encode() + b"\n")
    await writer.drain()


async def receive(reader: asyncio.StreamReader) -> dict[str, Any] | None:
    """The next message, or None at the end of the connection."""
    try:
        line = await reader.readline()
    except (ValueError, asyncio.LimitOverrunError):
        raise RemoteError("a line from the other side is too long") from None
    if not line:
        return None
    try:
        message = json.loads(line)
    except ValueError:
        raise RemoteError("the other side sent something that is not JSON") from None
    if not isinstance(message, dict) or "op" not in message:
        raise RemoteError("the other side sent a message without an op")
    return message


class RemoteProcess:
    """The receiver on the other host, as the session handles a local child: pid, returncode,
    wait, kill, terminate, a stdin for control lines and a stderr of relayed lines."""

    def __init__(self, link: RemoteLink, pid: int) -> None:
        self.link = link
        self.pid = pid
        self.returncode: int | None = None
        self._exited = asyncio.Event()
        self.stdin = _ControlPipe(link)
        self.stderr = _RelayedLines()

    def exited(self, code: int) -> None:
        self.returncode = code
        self._exited.set()
        self.stderr.close()

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

    def push(self, line: str) -> None:
        self._lines.put_nowait(line.encode() + b"\n")

    def close(self) -> None:
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

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.host = ""  # the agent's host name
        self.address = ""  # the agent's address, as this side reached it
        self.process: RemoteProcess | None = None
        self.clock = {"offset_ns": 0, "error_ns": 0}
        self._telemetry: Callable[[bytes], None] | None = None
        self._reply: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self._pump: asyncio.Task[None] | None = None

    @classmethod
    async def connect(cls, address: str, token: str) -> RemoteLink:
        host, port = split_address(address)
        try:
            reader, writer = await asyncio.wait_for(
                asyncio.open_connection(host, port, limit=MAX_LINE), CONNECT_TIMEOUT_S
            )
        except (OSError, TimeoutError) as exc:
            reason = getattr(exc, "strerror", None) or "no answer"
            raise RemoteError(f"cannot reach the agent at {host}:{port}: {reason}") from None
        link = cls(reader, writer)
        link.address = host
        await send(writer, {"op": "hello", "token": token, "protocol": PROTOCOL})
        answer = await receive(reader)
        if answer is None or answer["op"] != "welcome":
            writer.close()
            reason = (answer or {}).get("reason", "it closed the connection")
            raise RemoteError(f"the agent at {host}:{port} refused: {reason}")
        link.host = str(answer.get("host", host))
        await link._measure_clock()
        link._pump = asyncio.create_task(link._read())
        return link

    async def _measure_clock(self) -> None:
        """The agent's clock minus ours, from the exchange with the shortest round trip
        (its half is the error bound): NTP's rule, on CLOCK_MONOTONIC."""
        best: tuple[int, int] | None = None
        for _ in range(CLOCK_SAMPLES):
            t0 = time.monotonic_ns()
            await send(self.writer, {"op": "clock"})
            answer = await receive(self.reader)
            t2 = time.monotonic_ns()
            if answer is None or answer["op"] != "clock":
                raise RemoteError("the agent did not answer the clock exchange")
            offset = int(answer["t"]) - (t0 + t2) // 2
            if best is None or t2 - t0 < best[1]:
                best = (offset, t2 - t0)
        assert best is not None
        self.clock = {"offset_ns": best[0], "error_ns": best[1] // 2}

    async def _read(self) -> None:
        try:
            while True:
                message = await receive(self.reader)
                if message is None:
                    break
                op = message["op"]
                if op == "telemetry" and self._telemetry is not None:
                    self._telemetry(base64.b64decode(message["data"]))
                elif op == "stderr" and self.process is not None:
                    self.process.stderr.push(str(message.get("line", "")))
                elif op == "exit" and self.process is not None:
                    self.process.exited(int(message["code"]))
                else:
                    self._reply.put_nowait(message)
        except (RemoteError, OSError):
            pass
        if self.process is not None and self.process.returncode is None:
            self.process.exited(-9)  # the agent went away: its child with it
        self._reply.put_nowait({"op": "gone"})

    async def start_receiver(
        self, config: dict[str, Any], telemetry: Callable[[bytes], None]
    ) -> RemoteProcess:
        self._telemetry = telemetry
        await send(self.writer, {"op": "start", "role": "receiver", "config": config})
        answer = await self._reply.get()
        if answer["op"] != "started":
            raise RemoteError(f"the agent could not start the receiver: {answer.get('message')}")
        self.process = RemoteProcess(self, int(answer["pid"]))
        return self.process

    async def open_channel(self, request: dict[str, Any]) -> dict[str, Any]:
        """Have the agent create the channel's receiving end on its host; its plan."""
        await send(self.writer, {"op": "open", **request})
        answer = await self._reply.get()
        if answer["op"] != "opened":
            raise RemoteError(f"the agent could not open the channel: {answer.get('message')}")
        return answer["plan"]

    def post(self, message: dict[str, Any]) -> None:
        """Send without waiting (control lines, kill): the connection keeps the order."""
        try:
            self.writer.write(json.dumps(message).encode() + b"\n")
        except (OSError, RuntimeError):
            pass

    async def close(self) -> None:
        self.post({"op": "bye"})
        try:
            await asyncio.wait_for(self.writer.drain(), 2)
        except (OSError, TimeoutError, ConnectionError):
            pass
        self.writer.close()
        if self._pump is not None:
            try:
                await asyncio.wait_for(self._pump, 3)
            except (TimeoutError, asyncio.CancelledError):
                self._pump.cancel()
