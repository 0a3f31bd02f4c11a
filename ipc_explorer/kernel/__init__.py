"""What the kernel itself says about a process and the IPC objects it uses, read by another
process: /proc/PID/{stat,syscall,wchan,fd,maps}, a child's descriptor borrowed with
pidfd_getfd(2) for FIONREAD / F_GETPIPE_SZ / SIOCOUTQ, /proc/net/{tcp,udp,unix} by inode.

Every figure comes with its source, so that a front end can say where it came from, and
nothing here trusts what a process says of itself.
"""

from ipc_explorer.kernel.facts import Fact, Facts

__all__ = ["Fact", "Facts"]
