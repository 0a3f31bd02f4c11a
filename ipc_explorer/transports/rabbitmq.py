"""A private RabbitMQ node for the amqp mechanism, when the user names no broker.

The node is the distribution's ``rabbitmq-server`` (no Python package can be the real thing),
run as the current user from a private 0700 directory that holds its data, logs, config and
Erlang cookie: its own node name, AMQP port, management port, distribution port and epmd, all
on 127.0.0.1 (epmd listens on every address unless told otherwise, so the node gets an epmd
of its own, started here). Both are tethered to this process (SIGKILL when it dies) and the
directory records its owner, so that the next start removes what a killed run left behind.
A node takes a few seconds to start: ``start`` reports progress while it waits.
"""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import shutil
import signal
import socket
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ipc_explorer.transports.base import TransportError

SERVER = "/usr/lib/rabbitmq/bin/rabbitmq-server"
EPMD = "epmd"
INSTALL_HINT = (
    "the amqp mechanism needs RabbitMQ: install it with `sudo apt-get install rabbitmq-server` "
    "(Debian, Ubuntu), or give a broker with --broker amqp://user:pass@host:port/vhost"
)
START_TIMEOUT_S = 60.0
#: The user a private node is made with (its password is made for each node).
USER = "ipcx"
DIR_PREFIX = "ipcx-broker-"
OWNER_FILE = "owner.json"
#: A node directory without its owner record is left alone this long: a run writes the record
#: right after making the directory, and may be doing so at this moment.
OWNERLESS_GRACE_S = 60


def installed() -> bool:
    return Path(SERVER).exists() and shutil.which(EPMD) is not None


def free_ports(count: int) -> list[int]:
    """Ports free on 127.0.0.1 now (the node binds them a moment later)."""
    sockets = [socket.socket() for _ in range(count)]
    try:
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def _start_time(pid: int) -> int | None:
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return int(text[text.rindex(")") + 2 :].split()[19])


@dataclass
class PrivateBroker:
    """One private node: where it listens and the processes behind it."""

    directory: Path
    amqp_port: int
    management_port: int
    node: str
    processes: list[asyncio.subprocess.Process]
    address: str = "127.0.0.1"
    password: str = ""

    @property
    def url(self) -> str:
        return f"amqp://{USER}:{self.password}@{self.address}:{self.amqp_port}/%2F"

    @property
    def management_url(self) -> str:
        return f"http://{self.address}:{self.management_port}"

    @classmethod
    async def start(
        cls, progress: Callable[[str], None] | None = None, address: str = "127.0.0.1"
    ) -> PrivateBroker:
        """Start a node and wait until it accepts AMQP connections; TransportError when
        RabbitMQ is not installed or the node does not come up (its log's tail is said).

        It listens on ``address`` (127.0.0.1 unless another host must reach it: the other
        end of a ``run --remote``) with a user and password made for it alone."""
        if not installed():
            raise TransportError(INSTALL_HINT)
        say = progress or (lambda text: None)
        reclaimed = sweep_stale()
        if reclaimed:
            say(f"removed {reclaimed} stale private broker(s) of runs that were killed")
        directory = Path(tempfile.mkdtemp(prefix=DIR_PREFIX))  # 0700
        amqp, management, distribution, epmd_port = free_ports(4)
        node = f"ipcx-{os.getpid()}-{directory.name[-8:]}@localhost"
        (directory / OWNER_FILE).write_text(
            json.dumps({"pid": os.getpid(), "start_time": _start_time(os.getpid()), "node": node})
        )
        password = secrets.token_urlsafe(18)
        (directory / "rabbitmq.conf").write_text(
            f"listeners.tcp.1 = {address}:{amqp}\n"
            f"management.tcp.ip = {address}\n"
            f"management.tcp.port = {management}\n"
            # a user of its own: no one else on the machine (or the network) knows it
            f"default_user = {USER}\n"
            f"default_pass = {password}\n"
            # queue figures for the panels every half second (the default is 5 s)
            "collect_statistics_interval = 500\n"
        )
        (directory / "enabled_plugins").write_text("[rabbitmq_management].\n")
        (directory / "rabbitmq-env.conf").write_text("")
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin:/usr/sbin"),
            "HOME": str(directory),  # the Erlang cookie goes here
            "RABBITMQ_CONF_ENV_FILE": str(directory / "rabbitmq-env.conf"),
            "RABBITMQ_CONFIG_FILE": str(directory / "rabbitmq"),
            "RABBITMQ_ENABLED_PLUGINS_FILE": str(directory / "enabled_plugins"),
            "RABBITMQ_NODENAME": node,
            "RABBITMQ_MNESIA_BASE": str(directory / "mnesia"),
            "RABBITMQ_LOG_BASE": str(directory / "log"),
            "RABBITMQ_PID_FILE": str(directory / "node.pid"),
            "RABBITMQ_PLUGINS_EXPAND_DIR": str(directory / "plugins"),
            "RABBITMQ_NODE_IP_ADDRESS": address,
            "RABBITMQ_NODE_PORT": str(amqp),
            "RABBITMQ_DIST_PORT": str(distribution),
            "ERL_EPMD_ADDRESS": "127.0.0.1",
            "ERL_EPMD_PORT": str(epmd_port),
            "ERL_FLAGS": "-kernel inet_dist_use_interface {127,0,0,1}",
            # exec the VM in place of the script, so that the death signal reaches it
            "RUNNING_UNDER_SYSTEMD": "1",
        }
        broker = cls(directory, amqp, management, node, [], address, password)
        try:
            say("starting a private RabbitMQ node (a few seconds)")
            broker.processes.append(
                await _tethered([EPMD, "-port", str(epmd_port), "-address", "127.0.0.1"], env)
            )
            broker.processes.append(await _tethered([SERVER], env, directory / "server.out"))
            await broker._until_ready(say)
        except BaseException:
            await broker.stop()
            raise
        return broker

    async def _until_ready(self, say: Callable[[str], None]) -> None:
        started = time.monotonic()
        shown = 0
        while True:
            if self.processes[-1].returncode is not None:
                raise TransportError(f"the private RabbitMQ node exited: {self.log_tail()}")
            if await _accepts_amqp(self.address, self.amqp_port):
                say(f"private RabbitMQ node ready on {self.address}:{self.amqp_port}")
                return
            waited = time.monotonic() - started
            if waited > START_TIMEOUT_S:
                raise TransportError(
                    f"the private RabbitMQ node did not start within {START_TIMEOUT_S:g} s: "
                    f"{self.log_tail()}"
                )
            if int(waited) > shown:
                shown = int(waited)
                say(f"starting a private RabbitMQ node: {shown} s")
            await asyncio.sleep(0.2)

    def log_tail(self) -> str:
        lines = []
        for path in (self.directory / "server.out", *(self.directory / "log").glob("*.log")):
            try:
                lines += [line for line in path.read_text().splitlines() if line.strip()]
            except OSError:
                continue
        return lines[-1] if lines else "no log"

    async def stop(self) -> None:
        """Kill the node and its epmd (the node's data is disposable) and remove the dir."""
        for proc in reversed(self.processes):
            if proc.returncode is None:
                try:
                    proc.kill()
                except ProcessLookupError:
                    pass
        for proc in self.processes:
            try:
                await asyncio.wait_for(proc.wait(), 5)
            except TimeoutError:
                pass
        self.kill_now()

    def kill_now(self) -> None:
        """From a signal handler or atexit: no waiting."""
        for proc in self.processes:
            if proc.returncode is None:
                try:
                    os.kill(proc.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
        _kill_node_processes(self.directory)
        shutil.rmtree(self.directory, ignore_errors=True)


async def _tethered(
    command: list[str], env: dict[str, str], output: Path | None = None
) -> asyncio.subprocess.Process:
    out = open(output, "wb") if output else asyncio.subprocess.DEVNULL  # noqa: SIM115
    try:
        return await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "ipc_explorer.children.tethered",
            "--parent-pid",
            str(os.getpid()),
            "--",
            *command,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=out,
            stderr=asyncio.subprocess.STDOUT if output else asyncio.subprocess.DEVNULL,
            start_new_session=True,  # a Ctrl-C in the terminal is the parent's to handle
            env={**env, "PYTHONPATH": _package_root()},
        )
    finally:
        if output:
            out.close()


def _package_root() -> str:
    return str(Path(__file__).resolve().parents[2])


async def _accepts_amqp(address: str, port: int) -> bool:
    """The node answers the AMQP protocol header with its connection.start (a TCP listener
    alone is not enough: it opens before the node can take connections)."""
    try:
        reader, writer = await asyncio.wait_for(asyncio.open_connection(address, port), 1)
    except (OSError, TimeoutError):
        return False
    try:
        writer.write(b"AMQP\x00\x00\x09\x01")
        await writer.drain()
        frame = await asyncio.wait_for(reader.read(7), 2)
        return len(frame) == 7 and frame[0] == 1  # a method frame: connection.start
    except (OSError, TimeoutError):
        return False
    finally:
        writer.close()


def _kill_node_processes(directory: Path) -> None:
    """Processes still running from a node's directory (its VM, epmd): killed."""
    mark = str(directory)
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            cmdline = Path(f"/proc/{name}/cmdline").read_bytes().replace(b"\0", b" ").decode()
            environ = Path(f"/proc/{name}/environ").read_bytes()
        except OSError:
            continue
        if mark in cmdline or mark.encode() in environ:
            try:
                os.kill(int(name), signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass


def sweep_stale(base: Path | None = None) -> int:
    """Remove private nodes whose owner is gone (a run killed with its children); the count."""
    base = base or Path(tempfile.gettempdir())
    removed = 0
    for directory in base.glob(DIR_PREFIX + "*"):
        try:
            if directory.stat().st_uid != os.getuid():
                continue  # another user's: not ours to judge (nor readable)
            owner = json.loads((directory / OWNER_FILE).read_text())
        except FileNotFoundError:
            owner = {}
        except (OSError, ValueError):
            continue
        if not owner and _age_s(directory) < OWNERLESS_GRACE_S:
            continue  # just made by a starting run that has not written its owner yet
        pid, started = owner.get("pid"), owner.get("start_time")
        if pid and _start_time(pid) == started and started is not None:
            continue  # a live run's node
        _kill_node_processes(directory)
        shutil.rmtree(directory, ignore_errors=True)
        removed += not directory.exists()
    return removed


def _age_s(path: Path) -> float:
    try:
        return time.time() - path.stat().st_mtime
    except OSError:
        return 0.0
