"""UDP on loopback: datagrams that may be dropped, and are counted when they are.

Nothing is retried: a datagram the receiver's buffer cannot take is dropped by the kernel
(counted in /proc/net/udp, shown here) and counted by ipc-explorer as lost.
"""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Any

from ipc_explorer.transports import register
from ipc_explorer.transports.base import ENVELOPE, ChannelPlan, Limits, TransportOptions
from ipc_explorer.transports.datagram import DatagramTransport
from ipc_explorer.transports.sockets import bind_error

UDP_MAX_PAYLOAD = 65507  # 65535 - 8 (UDP header) - 20 (IPv4 header)


def _bind(host: str, port: int, what: str) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise bind_error(exc, f"{what} {host}:{port}") from None
    return sock


def kernel_drops(port: int) -> int | None:
    """The kernel's drop count for the UDP socket bound to ``port`` (/proc/net/udp)."""
    try:
        with open("/proc/net/udp") as f:
            next(f)
            for line in f:
                fields = line.split()
                if int(fields[1].split(":")[1], 16) == port:
                    return int(fields[-1])
    except (OSError, ValueError, IndexError, StopIteration):
        return None
    return None


@register
class UdpTransport(DatagramTransport):
    name = "udp"
    title = "UDP (loopback)"
    reliable = False
    lossy_timeout_s = 0.5
    needs_reply_address = True

    @classmethod
    def create(
        cls, options: TransportOptions, workdir: Path, tag: str, duplex: bool
    ) -> ChannelPlan:
        rx = _bind(options.host, options.port, "UDP port")
        port = rx.getsockname()[1]
        buffer = rx.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF)
        fds = {"receiver": {"sock": rx.detach()}, "sender": {}}
        limits = Limits(
            max_wire=UDP_MAX_PAYLOAD,
            overhead=ENVELOPE.size,
            limit_text=f"the UDP datagram limit is {UDP_MAX_PAYLOAD} bytes",
            buffer_bytes=buffer,
        )
        names = {"host": options.host, "port": port}
        return ChannelPlan(cls.name, duplex, str(workdir), options, limits, names, fds)

    def open(self) -> None:
        fd = self.plan.fds[self.role].get("sock")
        if fd is not None:
            sock = socket.socket(fileno=fd)
        else:
            sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        timeout = None
        if self.role == "sender":
            sock.connect((self.plan.names["host"], self.plan.names["port"]))
            if self.plan.duplex:
                timeout = self.lossy_timeout_s
        self._setup(sock, timeout)

    def live_state(self) -> dict[str, Any]:
        if self.role != "receiver":
            return {}
        return {"kernel_drops": kernel_drops(self.plan.names["port"])}

    def kernel_object(self) -> str:
        return f"{self.plan.names['host']}:{self.plan.names['port']} (UDP)"
