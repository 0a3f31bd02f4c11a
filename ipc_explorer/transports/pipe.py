"""Anonymous pipes: pipe(2) fds made by the parent and inherited by both children.

This is exactly how related processes share a pipe: only a process that inherits the fds can
use it. The buffer (64 KiB by default) fills when the reader stops, and then the writer blocks.
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


def make_pipe(pipe_size: int | None) -> tuple[int, int, int]:
    """A pipe (r, w) and its buffer size, resized with F_SETPIPE_SZ when asked."""
    r, w = os.pipe()
    if pipe_size:
        try:
            fcntl.fcntl(w, fcntl.F_SETPIPE_SZ, pipe_size)
        except OSError as exc:
            os.close(r)
            os.close(w)
            limit = Path("/proc/sys/fs/pipe-max-size").read_text().strip()
            raise TransportError(
                f"cannot set the pipe size to {pipe_size} bytes ({exc.strerror}); "
                f"the maximum here is {limit} bytes (/proc/sys/fs/pipe-max-size)"
            ) from None
    return r, w, fcntl.fcntl(w, fcntl.F_GETPIPE_SZ)


@register
class PipeTransport(ByteStreamTransport):
    name = "pipe"
    title = "anonymous pipe"

    @classmethod
    def create(
        cls, options: TransportOptions, workdir: Path, tag: str, duplex: bool
    ) -> ChannelPlan:
        fwd_r, fwd_w, size = make_pipe(options.pipe_size)
        fds = {"sender": {"out": fwd_w}, "receiver": {"in": fwd_r}}
        if duplex:
            back_r, back_w, _ = make_pipe(options.pipe_size)
            fds["sender"]["in"] = back_r
            fds["receiver"]["out"] = back_w
        return ChannelPlan(
            mechanism=cls.name,
            duplex=duplex,
            workdir=str(workdir),
            options=options,
            limits=stream_limits(size, "pipe"),
            names={"pipe_size": size},
            fds=fds,
        )

    def open(self) -> None:
        fds = self.plan.fds[self.role]
        peer = "receiver" if self.role == "sender" else "sender"
        self._fds = fds
        if "out" in fds:
            self._write = fd_writer(fds["out"], peer)
        if "in" in fds:
            fd = fds["in"]
            self._reader = FrameReader(lambda mv: os.readv(fd, (mv,)), peer)

    def channel_fds(self) -> dict[str, int]:
        return dict(self._fds)

    def close(self) -> None:
        for fd in self._fds.values():
            try:
                os.close(fd)
            except OSError:
                pass

    def kernel_object(self) -> str:
        fds = self.plan.fds
        text = f"pipe fd {fds['sender'].get('out', '?')}->{fds['receiver'].get('in', '?')}"
        if self.plan.duplex:
            text += f", back fd {fds['receiver'].get('out', '?')}->{fds['sender'].get('in', '?')}"
        return f"{text} ({self.plan.names['pipe_size']} B buffer)"
