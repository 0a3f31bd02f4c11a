"""The contention lab: races, torn reads, a bounded buffer and deadlocks, made to happen on
real shared memory between real worker processes, and explained.

``config`` (what to run), ``run`` (the parent: board, locks, workers, sampling, outcome),
``board`` and ``locks`` (the shared segment and the semaphores, also used by the workers in
``ipc_explorer.children.contender``), ``stats`` (what is known of each lock and worker) and
``deadlock`` (the wait-for graph). Nothing is imported here, so that a worker loads only what
it uses.
"""
