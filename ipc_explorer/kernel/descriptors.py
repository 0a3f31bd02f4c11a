"""Another process's descriptor, borrowed: pidfd_getfd(2) gives this process a copy of it,
on which the kernel answers FIONREAD (bytes queued to read), F_GETPIPE_SZ (a pipe's capacity)
and SIOCOUTQ (bytes not yet taken by the peer), exactly as it would to the owner.

The copy is closed at once; borrowing needs the right to trace the process (a parent has it
over its children where Yama allows descendants, and root always).
"""

from __future__ import annotations

import array
import ctypes
import fcntl
import os
import socket
import stat
import termios
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from ipc_explorer.kernel import net
from ipc_explorer.kernel.facts import Facts
from ipc_explorer.kernel.procfs import fd_target

_SYS_PIDFD_OPEN = 434
_SYS_PIDFD_GETFD = 438
_libc = ctypes.CDLL(None, use_errno=True)
_SIOCOUTQ = termios.TIOCOUTQ
_SO_DOMAIN = getattr(socket, "SO_DOMAIN", 39)
SOCKET_KINDS = {
    (socket.AF_UNIX, socket.SOCK_STREAM): "Unix stream socket",
    (socket.AF_UNIX, socket.SOCK_DGRAM): "Unix datagram socket",
    (socket.AF_INET, socket.SOCK_STREAM): "TCP socket",
    (socket.AF_INET, socket.SOCK_DGRAM): "UDP socket",
    (socket.AF_INET6, socket.SOCK_STREAM): "TCP socket",
    (socket.AF_INET6, socket.SOCK_DGRAM): "UDP socket",
}


class CannotBorrow(OSError):
    """The kernel refused to lend the descriptor (no such fd, no right to trace, old kernel)."""


def _syscall(number: int, *args: int) -> int:
    result = _libc.syscall(number, *args)
    if result < 0:
        errno = ctypes.get_errno()
        raise CannotBorrow(errno, os.strerror(errno))
    return result


@contextmanager
def borrowed(pid: int, fd: int) -> Iterator[int]:
    """A copy of ``pid``'s descriptor ``fd`` in this process, closed on leaving."""
    pidfd = _syscall(_SYS_PIDFD_OPEN, pid, 0)
    try:
        copy = _syscall(_SYS_PIDFD_GETFD, pidfd, fd, 0)
    finally:
        os.close(pidfd)
    try:
        yield copy
    finally:
        os.close(copy)


def _ioctl_int(fd: int, request: int) -> int:
    buf = array.array("i", [0])
    fcntl.ioctl(fd, request, buf)
    return buf[0]


def queued_to_read(fd: int) -> int:
    """FIONREAD: bytes a read would get now (a datagram socket: the next datagram's size)."""
    return _ioctl_int(fd, termios.FIONREAD)


def socket_kind(fd: int) -> tuple[int, int]:
    sock = socket.socket(fileno=fd)
    try:
        return sock.getsockopt(socket.SOL_SOCKET, _SO_DOMAIN), sock.type
    finally:
        sock.detach()


def socket_option(fd: int, option: int) -> int:
    sock = socket.socket(fileno=fd)
    try:
        return sock.getsockopt(socket.SOL_SOCKET, option)
    finally:
        sock.detach()


def descriptor_facts(pid: int, fd: int, prefix: str = "") -> Facts:
    """What the kernel says of one descriptor of ``pid``: what it is, what is queued on it.

    Names are prefixed with ``prefix`` (e.g. "sender_") when both ends are described.
    """
    facts = Facts()
    where = f"/proc/{pid}/fd/{fd}"
    target = fd_target(pid, fd)
    facts.add(prefix + "fd", fd, "the child's own report of its channel descriptor")
    facts.add(prefix + "fd_target", target, f"readlink {where}")
    if not target:
        return facts
    try:
        with borrowed(pid, fd) as copy:
            _describe(copy, target, pid, fd, prefix, facts)
    except OSError as exc:
        facts.add(prefix + "unreadable", f"{exc.strerror or exc}", f"pidfd_getfd on {where}")
    return facts


def _describe(copy: int, target: str, pid: int, fd: int, prefix: str, facts: Facts) -> None:
    via = f"on fd {fd} of pid {pid}, borrowed with pidfd_getfd"
    if target.startswith("pipe:") or (target.startswith("/") and _is_fifo(copy)):
        facts.add(prefix + "kind", "pipe" if target.startswith("pipe:") else "FIFO", "fstat")
        facts.add(prefix + "queued_bytes", queued_to_read(copy), f"ioctl FIONREAD {via}")
        capacity = fcntl.fcntl(copy, fcntl.F_GETPIPE_SZ)
        facts.add(prefix + "capacity_bytes", capacity, f"fcntl F_GETPIPE_SZ {via}")
        return
    if not target.startswith("socket:"):
        facts.add(prefix + "kind", "file", f"readlink /proc/{pid}/fd/{fd}")
        return
    family, kind = socket_kind(copy)
    facts.add(prefix + "kind", SOCKET_KINDS.get((family, kind), "socket"), f"getsockopt {via}")
    if kind == socket.SOCK_STREAM:
        facts.add(prefix + "queued_bytes", queued_to_read(copy), f"ioctl SIOCINQ {via}")
    else:
        next_size = queued_to_read(copy)
        facts.add(prefix + "next_datagram_bytes", next_size, f"ioctl FIONREAD {via}")
    outq = _ioctl_int(copy, _SIOCOUTQ)
    if family == socket.AF_UNIX:
        # On a Unix socket SIOCOUTQ is the kernel memory still charged to this socket for what
        # it sent and the peer has not read: data and its overhead, bounded by SO_SNDBUF.
        facts.add(prefix + "unread_memory_bytes", outq, f"ioctl SIOCOUTQ {via}")
    elif kind == socket.SOCK_STREAM:
        facts.add(prefix + "unsent_bytes", outq, f"ioctl SIOCOUTQ {via} (not yet acked)")
    facts.add(
        prefix + "send_buffer_bytes",
        socket_option(copy, socket.SO_SNDBUF),
        f"getsockopt SO_SNDBUF {via}",
    )
    facts.add(
        prefix + "receive_buffer_bytes",
        socket_option(copy, socket.SO_RCVBUF),
        f"getsockopt SO_RCVBUF {via}",
    )
    if family == socket.AF_UNIX and kind == socket.SOCK_DGRAM:
        try:
            qlen = int(Path("/proc/sys/net/unix/max_dgram_qlen").read_text())
            facts.add(prefix + "max_dgram_qlen", qlen, "/proc/sys/net/unix/max_dgram_qlen")
        except (OSError, ValueError):
            pass
    inode = int(target[len("socket:[") : -1])
    if family in (socket.AF_INET, socket.AF_INET6):
        row = net.inet_socket(inode, "udp" if kind == socket.SOCK_DGRAM else "tcp")
        if row is not None:
            table = row["table"]
            facts.add(prefix + "rx_queue_bytes", row["rx_queue"], f"/proc/net/{table}")
            facts.add(prefix + "tx_queue_bytes", row["tx_queue"], f"/proc/net/{table}")
            if "drops" in row:
                facts.add(prefix + "kernel_drops", row["drops"], f"/proc/net/{table}, drops")
            if kind == socket.SOCK_STREAM:
                facts.add(prefix + "tcp_state", row["state"], f"/proc/net/{table}")
                peer = net.peer_row(row)
                if peer is not None:
                    facts.add(
                        prefix + "peer_rx_queue_bytes",
                        peer["rx_queue"],
                        f"/proc/net/{table}, the row of the other end",
                    )


def _is_fifo(fd: int) -> bool:
    return stat.S_ISFIFO(os.fstat(fd).st_mode)
