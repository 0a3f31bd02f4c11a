"""The lessons' texts: what to watch, what to press, the question to ask the class, and the
answer (shown behind a key). Markdown; one entry per lesson, in teaching order."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class LessonText:
    title: str
    watch: str
    press: str
    question: str
    answer: str


LESSONS: dict[str, LessonText] = {
    "full-pipe": LessonText(
        title="A full pipe blocks its writer",
        watch="The Flow panel: the pipe's buffer between writer and reader, and the Sync "
        "panel's line about who is blocked.",
        press="`p` pauses the reader. Watch the writer stop within a second. `w` shows why, "
        "from the kernel; `p` again lets the reader drain the pipe.",
        question="The reader stopped reading. Why does the writer stop too, instead of "
        "writing on forever?",
        answer="A pipe is a bounded kernel buffer (64 KiB here, 16 pages). When it is full, "
        "write(2) puts the writer to sleep until the reader makes room: the kernel's "
        "back-pressure. Nothing is lost and nothing is dropped: the writer just waits.",
    ),
    "udp-drops": LessonText(
        title="UDP drops datagrams when the receiver does not keep up, and the kernel counts",
        watch="The Flow panel's lost count and the kernel's own drop count beside it.",
        press="`p` pauses the receiver for a few seconds, then `p` again.",
        question="The receiver stopped. Does the UDP sender stop, like the pipe's writer?",
        answer="No: UDP has no flow control. The sender goes on, the receiver's socket buffer "
        "fills, and the kernel drops every datagram that does not fit, counting it in "
        "/proc/net/udp (the drops column). ipc-explorer counts what never arrived: the two "
        "counts agree.",
    ),
    "nagle": LessonText(
        title="Nagle's algorithm and delayed ACKs stall a request/reply",
        watch="The Timing panel's round-trip latency (ping-pong), each message written as a "
        "header then a payload, as many protocols do.",
        press="`n` turns Nagle's algorithm on and off.",
        question="Why does a round trip on the same machine take 40 ms or more with Nagle on, "
        "and a tenth of a millisecond without?",
        answer="Nagle holds a small write back while earlier data is unacknowledged: the "
        "payload waits for the ACK of the header. The receiver delays its ACK (up to ~40 ms) "
        "hoping to piggyback it on a reply, but it cannot reply before the payload arrives. "
        "Each waits for the other until the delayed-ACK timer fires, in both directions. "
        "TCP_NODELAY (or one write per message) removes the stall.",
    ),
    "lost-updates": LessonText(
        title="A shared counter loses updates without a lock, none with one",
        watch="Expected vs actual in the lab: four processes add 1 to one counter in shared "
        "memory.",
        press="`l` switches the lock (none, sem, sysv); `r` runs again.",
        question="Four processes each add 1 twenty thousand times. Why is the total not "
        "80,000 without a lock?",
        answer="counter += 1 is a read, an add and a write. Two processes can read the same "
        "value and both write value + 1: one increment is lost. A mutex makes the three steps "
        "one for everybody else, at the price of waiting for it.",
    ),
    "deadlock": LessonText(
        title="Two locks taken in opposite order deadlock, and the fix",
        watch="The lab's lock table and timeline: each worker holds one lock and waits for the "
        "other's.",
        press="`o` switches the fix (none, order, timeout); `r` runs again.",
        question="Each worker takes its own lock, then its neighbour's. Why do they stop for "
        "good, and what single rule prevents it?",
        answer="Each holds what the other waits for: a cycle in the wait-for graph, so nobody "
        "can go on. Take locks in one global order (fix order) and no cycle can form; or give "
        "up after a timeout, release and retry (fix timeout).",
    ),
    "formats": LessonText(
        title="The same payload in JSON, XML, MessagePack and a struct, byte by byte",
        watch="The inspector (`d`): the message's bytes linked to its tree, and the same value "
        "in every format, its bytes split into values, keys and syntax.",
        press="`d` opens the inspector on the latest message; `ctrl+f` changes the format of "
        "the hex view; arrows move through the bytes.",
        question="The value is the same in all four. Where do the extra bytes of JSON and XML "
        "go, and what does the struct give up to be the smallest?",
        answer="Self-describing formats spend bytes on keys and syntax in every message (XML "
        "twice: open and close tags). MessagePack keeps keys but packs types and lengths into a "
        "byte. The struct sends only values at agreed offsets: no keys, no tags, and it breaks "
        "the day one side changes the layout.",
    ),
    "ring-buffer": LessonText(
        title="A semaphore-guarded ring buffer fills and drains",
        watch="The Sync panel: semaphores empty, full and mutex with their kernel values.",
        press="`p` pauses the receiver: watch empty fall to 0 and full rise to the ring's "
        "size; `p` again drains it.",
        question="What does the sender wait on when the ring is full, and who wakes it?",
        answer="On 'empty', which counts free slots: at 0, sem_wait puts the sender to sleep. "
        "Each slot the receiver frees is a sem_post on 'empty', which wakes the sender. "
        "'full' counts filled slots the same way for the receiver; 'mutex' guards the indices.",
    ),
}
