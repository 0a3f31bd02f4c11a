"""Named pipes: mkfifo(3) files in a private 0700 directory.

Unlike an anonymous pipe, any process that can reach the path can open a FIFO, so unrelated
programs can talk. Opening blocks until both a reader and a writer exist.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

from ipc_explorer.transports import register
from ipc_explorer.transports.base import ChannelPlan, TransportError, TransportOptions
from ipc_explorer.transports.stream import (
    ByteStreamTransport,
    FrameReader,
    fd_writer,
    stream_limits,
)


@register
class FifoTransport(ByteStreamTransport):
    name = "fifo"
    title = "named pipe (FIFO)"

    @classmethod
    def create(
        cls, options: TransportOptions, workdir: Path, tag: str, duplex: bool
    ) -> ChannelPlan:
        names = {"to_receiver": str(workdir / "to-receiver.fifo")}
        if duplex:
            names["to_sender"] = str(workdir / "to-sender.fifo")
        for path in names.values():
            os.mkfifo(path, 0o600)
        return ChannelPlan(
            mechanism=cls.name,
            duplex=duplex,
            workdir=str(workdir),
            options=options,
            limits=stream_limits(options.pipe_size or 65536, "FIFO"),
            names=names,
        )

    def open(self) -> None:
        names = self.plan.names
        self._fds: list[int] = []
        peer = "receiver" if self.role == "sender" else "sender"
        # Both sides open to_receiver first, so the blocking opens pair up without deadlock.
        if self.role == "sender":
            out_fd = self._open(names["to_receiver"], os.O_WRONLY)
            in_fd = self._open(names["to_sender"], os.O_RDONLY) if self.plan.duplex else None
        else:
            in_fd = self._open(names["to_receiver"], os.O_RDONLY)
            out_fd = self._open(names["to_sender"], os.O_WRONLY) if self.plan.duplex else None
        self._ends = {name: fd for name, fd in (("in", in_fd), ("out", out_fd)) if fd is not None}
        if out_fd is not None:
            if self.plan.options.pipe_size:
                try:
                    fcntl.fcntl(out_fd, fcntl.F_SETPIPE_SZ, self.plan.options.pipe_size)
                except OSError as exc:
                    raise TransportError(f"cannot set the FIFO size: {exc.strerror}") from None
            self._write = fd_writer(out_fd, peer)
        if in_fd is not None:
            self._reader = FrameReader(lambda mv: os.readv(in_fd, (mv,)), peer)

    def _open(self, path: str, flags: int) -> int:
        fd = os.open(path, flags)
        self._fds.append(fd)
        return fd

    def channel_fds(self) -> dict[str, int]:
        return dict(getattr(self, "_ends", {}))

    def close(self) -> None:
        for fd in getattr(self, "_fds", ()):
            try:
                os.close(fd)
            except OSError:
                pass

    def kernel_object(self) -> str:
        text = self.plan.names["to_receiver"]
        if self.plan.duplex:
            text += " (+ to-sender.fifo)"
        return text
