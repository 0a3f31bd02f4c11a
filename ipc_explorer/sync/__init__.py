"""Instrumented synchronisation: the shared-memory ring's semaphores, which report their value,
waits and holds. (The contention lab's locks and board are the lab's: ``ipc_explorer.lab``.)"""

from ipc_explorer.sync.semaphore import InstrumentedSemaphore

__all__ = ["InstrumentedSemaphore"]
