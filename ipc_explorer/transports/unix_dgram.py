"""Unix domain datagram sockets: boundaries kept, and (unlike UDP) never dropped.

When the receiver's queue is full the sender blocks instead of losing the datagram. The largest
datagram is bounded by the socket's send buffer; it is measured here, not guessed.
"""

from __future__ import annotations

import errno
import socket
from functools import cache
from pathlib import Path

from ipc_explorer.transports import register
from ipc_explorer.transports.base import ENVELOPE, ChannelPlan, Limits, TransportOptions
from ipc_explorer.transports.datagram import DatagramTransport
from ipc_explorer.transports.sockets import bind_error, socket_buffer


@cache
def max_unix_datagram() -> int:
    """The largest datagram a default AF_UNIX socket pair accepts (binary search, no guess)."""
    a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
    a.setblocking(False)
    b.setblocking(False)
    try:
        low, high = 1, 16 * 1024 * 1024
        while low < high:
            mid = (low + high + 1) // 2
            try:
                a.send(b"\0" * mid)
                b.recv(mid)
                low = mid
            except OSError as exc:
                if exc.errno not in (errno.EMSGSIZE, errno.EAGAIN, errno.ENOBUFS):
                    raise
                high = mid - 1
        return low
    finally:
        a.close()
        b.close()


def _bind(path: str) -> socket.socket:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    try:
        sock.bind(path)
    except OSError as exc:
        sock.close()
        raise bind_error(exc, path) from None
    return sock


@register
class UnixDgramTransport(DatagramTransport):
    name = "unix-dgram"
    title = "Unix datagram socket"

    @classmethod
    def create(
        cls, options: TransportOptions, workdir: Path, tag: str, duplex: bool
    ) -> ChannelPlan:
        rx_path = str(workdir / "receiver.sock")
        rx = _bind(rx_path)
        names = {"receiver": rx_path}
        fds = {"receiver": {"sock": rx.detach()}, "sender": {}}
        if duplex:
            tx_path = str(workdir / "sender.sock")
            fds["sender"]["sock"] = _bind(tx_path).detach()
            names["sender"] = tx_path
        largest = max_unix_datagram()
        probe = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        buffer = socket_buffer(probe)
        probe.close()
        limits = Limits(
            max_wire=largest,
            overhead=ENVELOPE.size,
            limit_text=(
                f"this Unix datagram socket's limit is {largest} bytes (from SO_SNDBUF {buffer})"
            ),
            buffer_bytes=buffer,
        )
        return ChannelPlan(cls.name, duplex, str(workdir), options, limits, names, fds)

    def open(self) -> None:
        names = self.plan.names
        fd = self.plan.fds[self.role].get("sock")
        sock = (
            socket.socket(fileno=fd)
            if fd is not None
            else socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        )
        if self.role == "sender":
            sock.connect(names["receiver"])
        elif self.plan.duplex:
            sock.connect(names["sender"])
        self._setup(sock, None)

    def kernel_object(self) -> str:
        return self.plan.names["receiver"]
