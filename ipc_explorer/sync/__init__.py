"""Instrumented synchronisation: semaphores and locks that report their own figures."""

from ipc_explorer.sync.semaphore import InstrumentedSemaphore

__all__ = ["InstrumentedSemaphore"]
