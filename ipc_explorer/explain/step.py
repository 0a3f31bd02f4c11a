"""What to say at each stage of step mode: one line per stage, in the mechanism's own words.

Figures in braces come from the stage's report and the kernel facts read after it
(``{wire_bytes}``, ``{queued_bytes}``...); a line whose figure is missing is said without it.
"""

from __future__ import annotations

#: Per mechanism: the call that sends, the call that receives, and where a sent message waits
#: until it is received.
CALLS: dict[str, tuple[str, str, str]] = {
    "pipe": ("writev(2)", "readv(2)", "the pipe's kernel buffer"),
    "fifo": ("writev(2)", "readv(2)", "the FIFO's kernel buffer"),
    "unix-stream": ("sendmsg(2)", "recv(2)", "the receiving socket's queue"),
    "unix-dgram": ("sendmsg(2)", "recvfrom(2)", "the receiving socket's queue, as one datagram"),
    "tcp": ("sendmsg(2)", "recv(2)", "the receiver's TCP receive queue"),
    "udp": ("sendmsg(2)", "recvfrom(2)", "the receiving socket's queue, as one datagram"),
    "shm": ("sem_wait + memcpy + sem_post", "sem_wait + memcpy + sem_post", "a slot of the ring"),
    "mq": ("mq_send(3)", "mq_receive(3)", "the message queue"),
    "http": ("send(2) of a POST", "recv(2) + llhttp", "the server's TCP receive queue"),
    "amqp": ("basic_publish (confirmed)", "a basic.deliver", "the broker"),
}

#: One line per stage. The send line depends on the mechanism's kind, below.
STAGES: dict[str, str] = {
    "build": "the sender built message {seq}: {what}; nothing has left the process yet",
    "serialize": "{format} encoded it into {payload_bytes} bytes (in the sender's own memory)",
    "send": "{send_call} returned {wire_bytes}: the {wire_bytes} bytes now sit in {held_in}; "
    "the receiver has not read yet",
    "kernel": "in the kernel: {kernel_line}; both processes are held, nothing moves",
    "receive": "{recv_call} returned the message: it has left {held_in}; now {kernel_after}",
    "deserialize": "{format} decoded {payload_bytes} bytes back into a value; {check}",
    "verified": "message {seq} verified: {order}, {integrity}",
    "echo": "the receiver sent it back ({wire_bytes} bytes) and the sender has the echo: "
    "one round trip done",
}

#: Mechanisms whose send and receive are not one call each.
SEND_LINES: dict[str, str] = {
    "shm": "the sender waited on 'empty', copied {wire_bytes} bytes into a slot of the ring and "
    "posted 'full': the message sits in shared memory; the receiver has not taken it yet",
}
SEND_LINES["amqp"] = (
    "basic_publish returned {wire_bytes}: the broker has confirmed the message, and with a "
    "prefetch window it has already pushed it down the consumer's connection"
)
#: The "in the kernel" line where the message is not in the kernel.
KERNEL_STAGE_LINES: dict[str, str] = {
    "shm": "in shared memory: the message sits in its slot, outside the kernel, which holds "
    "only the semaphores: {kernel_line}; both processes are held, nothing moves",
    "amqp": "at the broker and on its way: {kernel_line}; both processes are held",
}
#: The send call when header and payload go in two calls (--split-writes).
SPLIT_SEND = "two send(2) calls"
RECEIVE_LINES: dict[str, str] = {
    "amqp": "the consumer took the basic.deliver out of its socket; now {kernel_after}",
    "shm": "the receiver waited on 'full', copied the message out of its slot and posted "
    "'empty'; now {kernel_after}",
}

#: How the kernel's view is said, by the fact that carries it.
KERNEL_LINES: dict[str, str] = {
    "consumer_queued_bytes": "{consumer_queued_bytes} bytes of deliveries wait in the "
    "consumer's socket; {queue_depth} message(s) ready in the broker's queue",
    "queued_bytes": "{queued_bytes} bytes queued for the receiver{capacity}",
    "next_datagram_bytes": "one datagram of {next_datagram_bytes} bytes waits for the receiver",
    "queue_depth": "{queue_depth} of {queue_max_messages} messages in the queue",
    "full": "semaphore full = {full}, empty = {empty}: {full} slot(s) hold a message",
}
#: The same when the figure is 0.
KERNEL_EMPTY: dict[str, str] = {
    "queued_bytes": "nothing is queued for the receiver",
    "next_datagram_bytes": "no datagram waits for the receiver",
    "queue_depth": "the queue is empty",
    "full": "semaphore full = 0, empty = {empty}: no slot holds a message",
    "consumer_queued_bytes": "nothing waits in the consumer's socket; {queue_depth} message(s) "
    "ready in the broker's queue",
}

#: Which panel a stage concerns, for a front end to point at.
PANELS: dict[str, str] = {
    "build": "flow",
    "serialize": "bytes",
    "send": "flow",
    "kernel": "sync",
    "receive": "flow",
    "deserialize": "bytes",
    "verified": "timing",
    "echo": "flow",
}

ENTERED = (
    "step mode: both processes are held at a barrier; each press moves one message one "
    "stage (build, serialize, send, in the kernel, receive, deserialize, verified)"
)
LEFT = "step mode left: the flow goes on at the chosen rate"

#: When the receiver's message is not the one the sender just sent (one was still on its way).
OTHER_MESSAGE = " (this is message {other}, not {seq}: one sent before was still on its way)"
