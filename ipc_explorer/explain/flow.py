"""What to say about each mechanism and format of the message flow: short, correct, good enough
to teach from."""

from __future__ import annotations

MECHANISMS: dict[str, str] = {
    "pipe": (
        "**Anonymous pipe** - `pipe(2)` gives two file descriptors, a read end and a write end, "
        "around a kernel buffer (64 KiB by default, up to /proc/sys/fs/pipe-max-size with "
        "F_SETPIPE_SZ). Only processes that inherit the descriptors can use it: here the parent "
        "made the pipe and passed one end to each child.\n\n"
        "It is a **byte stream**: the kernel keeps no message boundaries, so each message is "
        "framed with a length prefix. A write of up to PIPE_BUF (4096 B) is atomic; larger ones "
        "may interleave with other writers. When the reader stops, the buffer fills and the "
        "writer **blocks**: pause the receiver to watch it. When the reader is gone, a write "
        "fails with **EPIPE**.\n\n"
        "Use it for parent/child plumbing (shell pipelines, subprocess output)."
    ),
    "fifo": (
        "**Named pipe (FIFO)** - a pipe with a name in the file system (`mkfifo`), here in a "
        "private 0700 directory. Unrelated processes can open it by path; `open()` blocks until "
        "both a reader and a writer exist. Otherwise it behaves like an anonymous pipe: byte "
        "stream, 64 KiB buffer, blocking writer, EPIPE when the reader is gone.\n\n"
        "Use it when two programs that do not share a parent must talk through a file path."
    ),
    "unix-stream": (
        "**Unix domain stream socket** - a connected socket between two processes on one "
        "machine, addressed by a socket file. No network stack: the kernel copies from one "
        "socket buffer to the other. The receiver can ask who the peer is (SO_PEERCRED: pid, "
        "uid, gid), which is why local daemons (Docker, systemd, X11, PostgreSQL) use it.\n\n"
        "A byte stream, framed here with a length prefix; a full buffer blocks the writer; a "
        "dead peer gives EPIPE or ECONNRESET."
    ),
    "unix-dgram": (
        "**Unix domain datagram socket** - like UDP but local, and **reliable**: boundaries are "
        "kept (one message per datagram, no framing needed) and a datagram is never dropped - "
        "when the receiver's queue is full the sender blocks. The largest datagram is bounded "
        "by the socket's send buffer (measured at start)."
    ),
    "tcp": (
        "**TCP on loopback** - the full network stack on 127.0.0.1: sequence numbers, "
        "acknowledgements, flow control, retransmission (never needed on loopback). A byte "
        "stream, framed here.\n\n"
        "**Nagle's algorithm** holds a small write back until the previous one is acknowledged, "
        "and the peer's **delayed ACK** waits up to ~40 ms hoping to piggyback: together they "
        "turn a sub-millisecond round trip into ~40 ms when a message is written in two parts "
        "(header, then payload: `--split-writes`, as many protocols do). ipc-explorer sets "
        "TCP_NODELAY and writes each message in one call; `ipc-explorer lesson nagle` shows "
        "the stall, `n` turns Nagle back on."
    ),
    "udp": (
        "**UDP on loopback** - datagrams with no connection, no acknowledgement, no retry. The "
        "largest payload is 65507 bytes (65535 minus the IP and UDP headers). When the "
        "receiver's buffer is full the kernel **drops** the datagram and counts it "
        "(/proc/net/udp, the drops column): ipc-explorer counts what never arrived and shows "
        "the kernel's count beside it. Pause the receiver to watch the losses grow."
    ),
    "shm": (
        "**Shared memory + semaphores** - both processes map the same POSIX shared memory "
        "segment; a message is copied into a slot of a ring buffer and read from it, with no "
        "kernel buffer in between. The ring is guarded the classic way: semaphore **empty** "
        "counts free slots (the producer waits on it when the ring is full), **full** counts "
        "filled slots (the consumer waits on it), and **mutex** guards the ring's indices.\n\n"
        "The kernel tells each semaphore's value (sem_getvalue) but not who waits: the wait and "
        "hold times shown come from the processes themselves."
    ),
    "mq": (
        "**POSIX message queue** - the kernel keeps whole messages, in priority order, up to a "
        "depth (msg_max, 10 here) and a size (msgsize_max, 8192 bytes here). A full queue "
        "blocks the sender; an empty one blocks the receiver. Limits come from "
        "/proc/sys/fs/mqueue and asking for more fails even as root."
    ),
    "http": (
        "**HTTP/1.1 on loopback** - TCP plus a text protocol: every message is a `POST /messages` "
        "request with a request line and headers, answered by a status line and headers. The "
        "head is a couple of hundred bytes around every payload and must be parsed on both "
        "sides: compare the overhead line of the bytes panel with a Unix socket's 28 bytes.\n\n"
        "Keep-alive reuses one connection; without pipelining each request waits for its "
        "response, so even the stream pattern is one round trip per message."
    ),
    "http-close": (
        "**HTTP/1.1, a connection per request** - `Connection: close`: every message opens a "
        "new TCP connection (SYN, SYN-ACK, ACK before the first byte), the server accepts it, "
        "answers and closes it. The **connect** stage beside the bar is that handshake; the "
        "flow counts the connections. Compare with `http`: what keep-alive saves is exactly "
        "this."
    ),
    "https": (
        "**HTTPS: TLS 1.3 on loopback, keep-alive** - the parent makes a throwaway CA and a "
        "certificate for 127.0.0.1; the client checks the server's certificate against that "
        "CA and the address against the certificate, in one **handshake** when the connection "
        "opens. Every request then travels in TLS records: a 5-byte header, a 16-byte "
        "authentication tag and a content-type byte each, encrypted. `run --json` splits the "
        "wire bytes into headers, body and tls, counted from what reaches the socket."
    ),
    "https-close": (
        "**HTTPS, a connection per request** - a TCP connect and a TLS handshake for every "
        "message. The client offers the session of its previous connection (a TLS 1.3 "
        "ticket): the server **resumes** it, skipping the certificate, but key exchange and a "
        "round trip remain. The **connect** and **handshake** stages show where the time goes; "
        "this is why clients keep connections alive."
    ),
    "amqp": (
        "**AMQP on a RabbitMQ broker** - sender and receiver do not talk to each other: each "
        "holds a TCP connection to a broker, a separate program that keeps **queues**. The "
        "sender publishes to the default exchange with the queue's name as routing key; with "
        "**publisher confirms** the publish returns once the broker has the message. The "
        "broker pushes messages to the consumer ahead of time, up to the **prefetch** window, "
        "and keeps each one until the consumer **acknowledges** it: kill the consumer (`k`) "
        "and whatever it had not acknowledged is **redelivered** to the next one, so nothing "
        "is lost (at least once: a message the first had processed may come twice). With "
        "auto-ack the broker forgets a message as soon as it is delivered, and a crash loses "
        "what the consumer held. The queue outlives both processes: that is what a broker "
        "adds to a pipe - decoupling in time, fan-out through exchanges, persistence - at the "
        "price of two network hops and a process in the middle. The timing split shows it: "
        "**confirm** is the wait from publish to the broker's confirm, **ack** the time the "
        "broker holds a delivered message unacknowledged (acks go out in batches, once the "
        "counts they cover have been reported, so nothing counted can be redelivered unseen).\n\n"
        "Other brokers in the same family: **IBM MQ** speaks its own protocol (MQI) through "
        "IBM's proprietary client library, and **MSMQ** is a Windows component; neither can be "
        "run here from a Linux package, so they are not offered. RabbitMQ's AMQP 0-9-1 is the "
        "open protocol they are usually compared with; an AMQP 1.0 or MQTT broker (Mosquitto) "
        "would add a second wire format for the same idea, not a different one."
    ),
}

FORMATS: dict[str, str] = {
    "json": (
        "**JSON** - text: keys are written out in every message, numbers as decimal digits, "
        "strings in quotes with escapes. Readable and universal, larger and slower to parse "
        "than binary formats."
    ),
    "xml": (
        "**XML** - text with tags: every value is wrapped in an element named after its key, "
        "with a type attribute where needed. The most bytes per value and the slowest parse; "
        "DOCTYPEs are refused (no entity expansion bombs)."
    ),
    "msgpack": (
        "**MessagePack** - binary JSON: a type byte before each value, small ints and short "
        "strings packed into that byte (fixint, fixstr), lengths as 8/16/32-bit fields. Keys "
        "are still sent in every message, but numbers and lengths cost a byte or a few."
    ),
    "struct": (
        "**C struct** - a fixed binary layout agreed in advance: no keys and no type tags, "
        "just the fields at known offsets (a magic, a version, int64, length-prefixed strings, "
        "float64). The smallest and fastest, and it breaks the day one side changes the layout."
    ),
}


def explain(mechanism: str, fmt: str) -> str:
    return f"{MECHANISMS.get(mechanism, '')}\n\n---\n\n{FORMATS.get(fmt, '')}"
