"""The contention lab: races, torn reads, a bounded buffer and deadlocks, made to happen on
real shared memory between real worker processes, and explained.

``config`` (what to run), ``run`` (the parent: board, locks, workers, sampling, outcome),
``board`` and ``locks`` (the shared segment and the semaphores, also used by the workers in
``ipc_explorer.children.contender``), ``stats`` (what is known of each lock and worker) and
``deadlock`` (the wait-for graph); ``recording`` (a run written to a file as it happens),
``replay`` and ``record_checks`` (that file read back, checked, and folded into a run that never
starts). Nothing is imported here, so that a worker loads only what it uses.
"""
