"""The locks the contention lab can put around shared memory, behind one small interface.

- ``none``: no lock at all, so the race is visible.
- ``sem``: a named POSIX semaphore used as a mutex. The kernel (glibc, on a futex) tells its
  value, never who waits or who holds it: those come from the processes' own reports.
- ``sysv``: a System V semaphore. The kernel also tells how many processes wait on it (GETNCNT)
  and which process operated on it last (GETPID): kernel truth, not a report. Used as a mutex
  its operations carry SEM_UNDO, so a holder that is killed gives the lock back; a counting
  semaphore (posted by one process, taken by another) must not: at exit the kernel would undo
  the producer's posts and throw away items nobody has taken yet.

Python has no atomic fetch-and-add on shared memory, so the lab has no "lock-free" mode: an
honest one would need a C extension.
"""

from __future__ import annotations

import random
import time
from typing import Any

import posix_ipc
import sysv_ipc

LOCK_KINDS = ("none", "sem", "sysv")


class Lock:
    """A mutex on one name; ``acquire`` returns False only when ``timeout`` ran out."""

    kind = "none"
    ident: Any = None

    def acquire(self, timeout: float | None = None) -> bool:
        return True

    def release(self) -> None:
        pass

    def value(self) -> int | None:
        return None

    def kernel_waiters(self) -> int | None:
        """Processes blocked on it, as the kernel counts them (System V only)."""
        return None

    def kernel_last_pid(self) -> int | None:
        """The last process that acquired or released it, as the kernel knows (System V only)."""
        return None

    def close(self) -> None:
        pass


class PosixLock(Lock):
    """A signal that breaks a wait raises InterruptedError (so the caller can tell its own stop
    from a SIGSTOP/SIGCONT pause, after which Linux also breaks a semaphore wait)."""

    kind = "sem"

    def __init__(self, name: str, create: bool = False, initial: int = 1):
        flags = posix_ipc.O_CREX if create else 0
        self.sem = posix_ipc.Semaphore(name, flags, 0o600, initial)
        self.ident = name

    def acquire(self, timeout: float | None = None) -> bool:
        try:
            self.sem.acquire(timeout)
        except posix_ipc.BusyError:
            return False
        except posix_ipc.SignalError as exc:
            raise InterruptedError(str(exc)) from None
        return True

    def release(self) -> None:
        self.sem.release()

    def value(self) -> int | None:
        return self.sem.value

    def close(self) -> None:
        try:
            self.sem.close()
        except posix_ipc.ExistentialError:
            pass


class SysvLock(Lock):
    kind = "sysv"

    def __init__(self, key: int, create: bool = False, initial: int = 1, undo: bool = True):
        flags = sysv_ipc.IPC_CREX if create else 0
        self.sem = sysv_ipc.Semaphore(key, flags, 0o600, initial)
        self.sem.undo = undo
        self.ident = key

    def acquire(self, timeout: float | None = None) -> bool:
        try:
            if timeout is None or sysv_ipc.SEMAPHORE_TIMEOUT_SUPPORTED:
                self.sem.acquire(timeout)
                return True
            return self._acquire_polling(timeout)
        except sysv_ipc.BusyError:
            return False
        except sysv_ipc.Error as exc:
            if "Signaled" in str(exc):
                raise InterruptedError(str(exc)) from None
            raise

    def _acquire_polling(self, timeout: float) -> bool:
        """A timed wait without semtimedop (the sysv_ipc wheel here is built without it): a
        non-blocking try every 0.5 ms until the deadline."""
        deadline = time.monotonic() + timeout
        self.sem.block = False
        try:
            while True:
                try:
                    self.sem.acquire()
                    return True
                except sysv_ipc.BusyError:
                    if time.monotonic() >= deadline:
                        return False
                    time.sleep(0.0005)
        finally:
            self.sem.block = True

    def release(self) -> None:
        self.sem.release()

    def value(self) -> int | None:
        return self.sem.value

    def kernel_waiters(self) -> int | None:
        return self.sem.waiting_for_nonzero

    def kernel_last_pid(self) -> int | None:
        return self.sem.last_pid or None


def new_lock_id(kind: str, tag: str, label: str) -> Any:
    """A fresh name (POSIX) or key (System V) for a lock of ``kind``; None for no lock. The
    lock made from it says its real one in ``ident`` (a System V key may be drawn again)."""
    if kind == "sem":
        return f"/ipcx-{tag}-{label}"
    if kind == "sysv":
        return random.randint(0x1000_0000, 0x7FFF_FFFF)
    return None


def create_lock(kind: str, ident: Any, initial: int = 1) -> Lock:
    if kind == "sem":
        return PosixLock(ident, create=True, initial=initial)
    if kind == "sysv":
        for _ in range(8):  # a random key may already be someone's: draw another
            try:
                return SysvLock(ident, create=True, initial=initial)
            except sysv_ipc.ExistentialError:
                ident = random.randint(0x1000_0000, 0x7FFF_FFFF)
        raise RuntimeError("no free System V semaphore key")
    return Lock()


def open_lock(kind: str, ident: Any, mutex: bool = True) -> Lock:
    """Open an existing lock; ``mutex`` False for a counting semaphore (no SEM_UNDO)."""
    if kind == "sem":
        return PosixLock(ident)
    if kind == "sysv":
        return SysvLock(ident, undo=mutex)
    return Lock()


def destroy_lock(kind: str, ident: Any) -> None:
    """Remove a lock by name or key; nothing if it is already gone (any process may call it)."""
    try:
        if kind == "sem":
            posix_ipc.unlink_semaphore(ident)
        elif kind == "sysv":
            sysv_ipc.remove_semaphore(sysv_ipc.Semaphore(ident).id)
    except (posix_ipc.ExistentialError, sysv_ipc.ExistentialError):
        pass
