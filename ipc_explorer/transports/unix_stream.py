"""Unix domain stream sockets: a socket file in the private directory, no network stack.

The kernel copies bytes from one socket buffer to the other; the peer's credentials can be
read (SO_PEERCRED), which is why local daemons (Docker, systemd, X11) use them.
"""

from __future__ import annotations

import socket
import struct
from pathlib import Path

from ipc_explorer.transports import register
from ipc_explorer.transports.base import ChannelPlan, TransportOptions
from ipc_explorer.transports.sockets import ConnectedStreamTransport, listen_on, socket_buffer
from ipc_explorer.transports.stream import stream_limits


@register
class UnixStreamTransport(ConnectedStreamTransport):
    name = "unix-stream"
    title = "Unix stream socket"
    family = socket.AF_UNIX

    @classmethod
    def create(
        cls, options: TransportOptions, workdir: Path, tag: str, duplex: bool
    ) -> ChannelPlan:
        path = str(workdir / "channel.sock")
        listener = listen_on(socket.AF_UNIX, path, path)
        buffer = socket_buffer(listener)
        return ChannelPlan(
            mechanism=cls.name,
            duplex=duplex,
            workdir=str(workdir),
            options=options,
            limits=stream_limits(buffer, "Unix stream socket"),
            names={"path": path},
            fds={"sender": {}, "receiver": {"listen": listener.detach()}},
        )

    def connect_address(self) -> str:
        return self.plan.names["path"]

    def open(self) -> None:
        super().open()
        if self.role == "receiver":
            creds = self.sock.getsockopt(
                socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i")
            )
            self.peer_pid, self.peer_uid, self.peer_gid = struct.unpack("3i", creds)

    def kernel_object(self) -> str:
        text = self.plan.names["path"]
        if self.role == "receiver" and hasattr(self, "peer_pid"):
            text += f" (peer pid {self.peer_pid}, uid {self.peer_uid} via SO_PEERCRED)"
        return text
