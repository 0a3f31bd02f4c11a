"""Why a process is blocked, said so that a student understands it. Figures in braces come
from the kernel's facts (teach/why.py); the peer's clause says what the other side does."""

from __future__ import annotations

#: How each side is called on a byte stream (writer, reader) and elsewhere.
SUBJECTS = {
    "stream": {"sender": "the writer", "receiver": "the reader"},
    "other": {"sender": "the sender", "receiver": "the receiver"},
    "contender": {"contender": "the lab worker"},
}

SENTENCES = {
    "running": "{who} is running (state R): it is not blocked",
    "stopped": "{who} is stopped (state T): a SIGSTOP (or a debugger) holds it",
    "write_full": "{who} is blocked in {call} on the {kind}: {queued_bytes:,} of "
    "{capacity_bytes:,} bytes are queued{peer}",
    "write": "{who} is blocked in {call} on the {kind}: no room for the next write, "
    "{queued_bytes:,} of {capacity_bytes:,} bytes are queued{peer}",
    "write_socket": "{who} is blocked in {call} on the {kind}: {unsent_bytes:,} bytes it sent "
    "are not acknowledged yet{peer_queue}{peer}",
    "write_unix": "{who} is blocked in {call} on the {kind}: what it sent and the reader has "
    "not read fills its send buffer ({unread_memory_bytes:,} of {send_buffer_bytes:,} bytes of "
    "kernel memory, data and overhead){peer}",
    "write_dgram_queue": "{who} is blocked in {call} on the {kind}: the reader's queue is full, "
    "{max_dgram_qlen} datagrams wait in it (max_dgram_qlen; {unread_memory_bytes:,} bytes of "
    "kernel memory){peer}",
    "read_empty": "{who} is blocked in {call} on the {kind}: nothing is queued for it{peer}",
    "read": "{who} is in {call} on the {kind}, {queued_bytes:,} bytes queued{peer}",
    "sem": "{who} is blocked in sem_wait on the semaphore '{semaphore}' (value {semaphore_value})"
    "{peer}",
    "mq_send": "{who} is blocked in mq_send(3): the queue holds {queue_depth} of "
    "{queue_max_messages} messages{peer}",
    "mq_receive": "{who} is blocked in mq_receive(3): the queue is empty{peer}",
    "own_futex": "{who} waits on a futex in its own memory: nothing in the channel stops it{said}",
    "sysv": "{who} is blocked in {call} on a System V semaphore set (id {semid}){peer}",
    "sleeping": "{who} sleeps in {call} (in the kernel's {wchan}){peer}{said}",
    "sleeping_user": "{who} sleeps (state {state}) outside a system call{peer}{said}",
}

#: The clause about the other side, from the kernel's view of it (or its own word).
PEER = {
    "stopped": ", {peer_who} is stopped (SIGSTOP)",
    "said": ", {peer_who} is {peer_said} (it says so)",
    "own_futex": ", {peer_who} is not taking anything: it waits on a futex of its own",
    "running": ", {peer_who} is running",
    "blocked": ", {peer_who} is blocked in {peer_call}",
    "gone": ", {peer_who} is gone",
}
