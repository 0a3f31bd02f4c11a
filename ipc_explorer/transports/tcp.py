"""TCP on loopback: the full network stack, flow control, and Nagle's algorithm.

TCP_NODELAY is on by default. With Nagle on (``nagle=True``), a small write waits for the ACK of
the previous one, and the receiver's delayed ACK holds that for up to ~40 ms: ping-pong shows it.
"""

from __future__ import annotations

import socket
from pathlib import Path

from ipc_explorer.transports import register
from ipc_explorer.transports.base import ChannelPlan, TransportOptions
from ipc_explorer.transports.sockets import (
    ConnectedStreamTransport,
    set_nodelay,
    socket_buffer,
    tcp_listener,
)
from ipc_explorer.transports.stream import stream_limits


@register
class TcpTransport(ConnectedStreamTransport):
    name = "tcp"
    title = "TCP (loopback)"
    family = socket.AF_INET

    @classmethod
    def create(
        cls, options: TransportOptions, workdir: Path, tag: str, duplex: bool
    ) -> ChannelPlan:
        listener, port = tcp_listener(options, "TCP port")
        buffer = socket_buffer(listener)
        return ChannelPlan(
            mechanism=cls.name,
            duplex=duplex,
            workdir=str(workdir),
            options=options,
            limits=stream_limits(buffer, "TCP connection"),
            names={"host": options.host, "port": port},
            fds={"sender": {}, "receiver": {"listen": listener.detach()}},
        )

    def connect_address(self) -> tuple[str, int]:
        return self.plan.names["host"], self.plan.names["port"]

    def tune(self, sock: socket.socket) -> None:
        set_nodelay(sock, self.plan.options.nagle)

    def kernel_object(self) -> str:
        names = self.plan.names
        nagle = "Nagle on" if self.plan.options.nagle else "TCP_NODELAY"
        return f"{names['host']}:{names['port']} ({nagle})"
