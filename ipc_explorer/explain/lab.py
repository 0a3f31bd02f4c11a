"""What to say about each contention-lab scenario, and where each figure of a run comes from."""

from __future__ import annotations

#: One explanation per scenario, to read aloud while it runs.
SCENARIOS: dict[str, str] = {
    "counter": (
        "Shared counter. Each worker process adds 1 to one 8-byte counter in shared memory, "
        "M times: read it, add one, write it back. Without a lock two processes can read the "
        "same value, both write value+1, and one increment is lost: a lost update. A POSIX "
        "named semaphore (sem) or a System V semaphore (sysv) used as a mutex makes the "
        "read-add-write one step for everyone else, at a price: every increment now waits for "
        "the lock and, when it is taken, sleeps in the kernel. Python has no atomic "
        "fetch-and-add on shared memory, so there is no honest lock-free mode here."
    ),
    "torn": (
        "Torn record. One writer keeps updating a record of four 8-byte fields that must agree "
        "(a = 3*seq, b = 7*seq, check = seq^a^b); readers copy it field by field. Without a "
        "lock a reader can copy half of an old record and half of a new one: a torn read, "
        "counted and shown. A mutex (sem, sysv) makes writer and readers take turns; a seqlock "
        "lets readers read without a lock and retry when the sequence number says a write "
        "overlapped their read (odd = writing)."
    ),
    "buffer": (
        "Bounded buffer. A producer puts numbered items into a ring of N slots; consumers take "
        "them out. Three semaphores guard it: 'empty' counts free slots (the producer waits on "
        "it when the ring is full), 'full' counts filled slots (consumers wait on it when it is "
        "empty) and 'mutex' protects the head and tail indices. Pause or slow the consumers and "
        "watch 'empty' fall to 0 and the producer block. Take the semaphores away (lock none) "
        "and the producer overwrites items nobody has read, while consumers read some twice. "
        "The condvar variant guards the ring with one mutex and two condition variables "
        "(not_full, not_empty): wait releases the mutex and sleeps until notified. Python has "
        "no process-shared pthread condition variable, so these are built from semaphores, as "
        "multiprocessing's Condition is: a waiter count, a 'sleep' and a 'woken' semaphore."
    ),
    "deadlock": (
        "Deadlock. N workers sit in a ring; each takes its own lock, works a little, then takes "
        "its neighbour's. When every worker holds its first lock and waits for the next, they "
        "wait for each other forever: a cycle in the wait-for graph (A waits for a lock B holds, "
        "B for one A holds). The lab builds that graph from what the workers write on the board "
        "and stops the run when a cycle persists. The fixes: take locks in one global order "
        "(fix order), or give up after a timeout, release, back off and retry (fix timeout)."
    ),
}

#: Where each figure of a run comes from (also in ``contend --json`` as ``sources``).
SOURCES: dict[str, str] = {
    "value": "kernel: sem_getvalue (sem) / semctl GETVAL (sysv), read by the parent",
    "kernel waiters": "kernel: semctl GETNCNT (sysv only; POSIX semaphores do not tell)",
    "last pid": "kernel: semctl GETPID (sysv only)",
    "holder, waiting": "the workers' own slots on the shared board, sampled at 20 Hz",
    "wait, hold": "the workers' own timings around each acquire and release (perf_counter)",
    "counter, record, ring": "read from the shared memory by the parent",
}

#: The same, as one paragraph under the lab screen's explanation.
WHERE_FIGURES_COME_FROM = (
    "Where the figures come from: a lock's value and (System V) its kernel waiter count and "
    "last pid are the kernel's, read by this app; holders, waiters and the timeline are what "
    "each worker writes in its slot of the shared board; wait and hold times are each worker's "
    "own timing of its acquires and releases; the counter, the record and the ring are read "
    "from the shared memory itself."
)
