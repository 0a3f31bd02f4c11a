"""AMQP 0-9-1 through a real RabbitMQ broker, with pika.

One queue per session (two in ping-pong: the echoes come back on a queue of their own),
published to through the default exchange with the queue's name as routing key: the
simplest AMQP route, in which the broker's queue is the channel as a POSIX queue is the
kernel's (an exchange of our own would add a routing step and nothing to watch). Publisher
confirms are on, so a publish returns when the broker has the message ("confirm" is timed);
the receiver acknowledges (manual acks, ``multiple``) what it has verified and reported to
the parent, so that a killed receiver leaves every counted message acknowledged and every
other one to be redelivered to the next; ``auto_ack`` shows what is lost without acks. The
prefetch window is the channel's QoS.

Where the user names no broker, the session provisions a private RabbitMQ node
(transports/rabbitmq.py), shared by the sessions of this process and removed at its exit.
The broker's URL, credentials included, reaches the children in their environment, never on
a command line, in a plan or in a summary.
"""

from __future__ import annotations

import asyncio
import atexit
import base64
import contextlib
import json
import os
import threading
import urllib.parse
import urllib.request
import weakref
from collections import deque
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any, ClassVar

import pika
import pika.exceptions
import pika.frame
import pika.spec
from pika.adapters.utils.connection_workflow import AMQPConnectorException

from ipc_explorer.codecs.base import Span
from ipc_explorer.kernel.descriptors import descriptor_facts
from ipc_explorer.kernel.facts import Facts
from ipc_explorer.transports import register
from ipc_explorer.transports.base import (
    ENVELOPE,
    MAX_STREAM_MESSAGE,
    ChannelClosed,
    ChannelEnd,
    ChannelPlan,
    Frame,
    Limits,
    Role,
    Transport,
    TransportError,
    TransportOptions,
    envelope_spans,
    monotonic_ns,
    redact,
    seconds_from_env,
)
from ipc_explorer.transports.rabbitmq import PrivateBroker

#: Environment variables that carry the broker's URL and management credentials to a child.
URL_VARIABLE = "IPCX_AMQP_URL"
AUTH_VARIABLE = "IPCX_AMQP_AUTH"
#: AMQP's framing around each frame's payload: type, channel, size before it, 0xCE after.
FRAME_HEADER = 7
FRAME_END = 1
CHANNEL = 1
#: A session's queue unused (no consumer, no publish) this long is deleted by the broker: what
#: removes it when the session was killed before it could (a given broker outlives us).
QUEUE_EXPIRES_MS = 60_000
#: How often a receiver asks the broker about its queue (a thread of its own).
QUEUE_POLL_S = 0.5
#: Body bytes per frame: RabbitMQ's (and pika's) frame_max less the frame's own framing.
BODY_PER_FRAME = pika.spec.FRAME_MAX_SIZE - FRAME_HEADER - FRAME_END

#: Heartbeats asked of the broker: a broker that stops answering (frozen, cut off) is noticed
#: within about two of them instead of hanging a run. A slow link may want more.
HEARTBEAT_S = round(seconds_from_env("IPCX_AMQP_HEARTBEAT_S", 5, 1))
#: How long opening a connection may take (TCP, TLS, AMQP handshake) before it is given up.
CONNECT_PATIENCE_S = seconds_from_env("IPCX_AMQP_CONNECT_S", 8, 1)

_private: PrivateBroker | None = None
#: One start at a time per event loop: two sessions opening at once share one node.
_starting: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Lock] = (
    weakref.WeakKeyDictionary()
)
#: A node handed in from outside (a test run's), which this module must not stop.
_adopted = False


def _connect(url: str, what: str, patience: float | None = None) -> pika.BlockingConnection:
    """A connection that notices a broker gone silent (frozen, or a peer that is no broker):
    bounded set-up, and heartbeats every HEARTBEAT_S (kept up by ``keep_alive`` while a
    child holds)."""
    try:
        parameters = pika.URLParameters(url)
    except ValueError as exc:
        raise TransportError(f"the broker URL {redact(url)} does not parse: {exc}") from None
    parameters.connection_attempts = 1
    parameters.socket_timeout = 5
    parameters.stack_timeout = CONNECT_PATIENCE_S if patience is None else patience
    parameters.heartbeat = HEARTBEAT_S
    parameters.blocked_connection_timeout = 10
    try:
        return pika.BlockingConnection(parameters)
    except pika.exceptions.ProbableAuthenticationError:
        raise TransportError(f"the AMQP broker refused the credentials ({what})") from None
    except (pika.exceptions.AMQPError, AMQPConnectorException, OSError) as exc:
        text = str(exc) or type(exc).__name__
        if isinstance(exc, AMQPConnectorException):
            text = f"no AMQP answer ({type(exc).__name__})"
        raise TransportError(f"cannot reach the AMQP broker at {redact(url)}: {text}") from None


def _gone(exc: BaseException) -> ChannelClosed:
    """The connection to the broker lost, in words: stopped answering, closed, or cut."""
    if isinstance(exc, pika.exceptions.AMQPHeartbeatTimeout):
        why = f"the broker stopped answering (no heartbeat for over {HEARTBEAT_S} s)"
    elif isinstance(exc, pika.exceptions.ConnectionClosedByBroker):
        why = f"the broker closed the connection ({exc.reply_code} {exc.reply_text})"
    else:
        why = f"the broker connection is gone ({type(exc).__name__}: {exc})"
    return ChannelClosed("BROKER", why)


async def private_broker(progress: Callable[[str], None] | None = None) -> PrivateBroker:
    """This process's private node, started on first use and removed when the process ends
    (sessions share it: a node takes seconds to start)."""
    global _private
    lock = _starting.setdefault(asyncio.get_running_loop(), asyncio.Lock())
    async with lock:
        if _private is None or _private.processes[-1].returncode is not None:
            _private = await PrivateBroker.start(progress)
            atexit.register(_private.kill_now)
        return _private


def adopt_private_broker(broker: PrivateBroker) -> None:
    """Use ``broker`` as this process's private node, and leave stopping it to its owner."""
    global _private, _adopted
    _private, _adopted = broker, True


async def stop_private_broker() -> None:
    global _private
    if _private is not None and not _adopted:
        broker, _private = _private, None
        await broker.stop()


def _url_of(plan: ChannelPlan) -> str:
    url = plan.env.get(URL_VARIABLE) or os.environ.get(URL_VARIABLE)
    if not url:
        raise TransportError("no AMQP broker URL for this channel")
    return url


def _management_guess(url: str) -> str:
    """A broker named by the user: its management API is tried on the usual port, over TLS
    when the broker is reached over TLS (its credentials must not go in the clear)."""
    parts = urllib.parse.urlsplit(url)
    host = parts.hostname or "127.0.0.1"
    host = f"[{host}]" if ":" in host else host
    if parts.scheme == "amqps":
        return f"https://{host}:15671"
    return f"http://{host}:15672"


def queue_figures(plan: ChannelPlan, queue: str) -> dict[str, Any]:
    """The broker's own account of a queue: ready and unacknowledged messages, consumers.
    From the management API where it answers (every count), else from a passive
    queue.declare (ready messages and consumers only)."""
    management = plan.options.management
    if management:
        vhost = urllib.parse.quote(plan.names.get("vhost", "/"), safe="")
        path = f"/api/queues/{vhost}/{urllib.parse.quote(queue, safe='')}"
        auth = plan.env.get(AUTH_VARIABLE) or os.environ.get(AUTH_VARIABLE, "")
        request = urllib.request.Request(management + path, headers={"Authorization": auth})
        try:
            with urllib.request.urlopen(request, timeout=1) as response:
                data = json.loads(response.read())
            return {
                "queue_depth": data.get("messages_ready", 0),
                "unacked": data.get("messages_unacknowledged", 0),
                "consumers": data.get("consumers", 0),
                "source": f"RabbitMQ management API, GET {path}",
            }
        except (OSError, ValueError):
            pass
    connection = _connect(_url_of(plan), "queue.declare passive")
    try:
        ok = connection.channel().queue_declare(queue, passive=True)
        return {
            "queue_depth": ok.method.message_count,
            "consumers": ok.method.consumer_count,
            "source": "queue.declare (passive), the broker's reply",
        }
    finally:
        connection.close()


@register
class AmqpTransport(Transport):
    name = "amqp"
    title = "AMQP (RabbitMQ)"
    boundaries = "message"
    extra_stages: ClassVar[tuple[str, ...]] = ("confirm", "ack")
    reconnectable = True
    # A child that exits must not delete the queue under a reader that takes over: the parent
    # deletes it at the end, and if the parent is killed the broker expires it (x-expires).
    children_destroy = False

    # -- in the parent -------------------------------------------------------------------
    @classmethod
    async def provision(
        cls, options: TransportOptions, progress: Callable[[str], None] | None = None
    ) -> TransportOptions:
        """The broker: the one the user named, or the private node (started if needed)."""
        if options.secrets.get(URL_VARIABLE):
            return options  # provisioned already (a restarted session)
        private = not options.broker
        if private:
            broker = await private_broker(progress)
            url, management = broker.url, broker.management_url
        else:
            url, management = options.broker, _management_guess(options.broker)
        parts = urllib.parse.urlsplit(url)
        user = urllib.parse.unquote(parts.username or "guest")
        password = urllib.parse.unquote(parts.password or "guest")
        token = base64.b64encode(f"{user}:{password}".encode()).decode()
        return replace(
            options,
            broker=redact(url),
            broker_private=private,
            management=management,
            secrets={URL_VARIABLE: url, AUTH_VARIABLE: f"Basic {token}"},
        )

    @classmethod
    async def shutdown(cls) -> None:
        await stop_private_broker()

    @classmethod
    def create(
        cls, options: TransportOptions, workdir: Path, tag: str, duplex: bool
    ) -> ChannelPlan:
        if not options.secrets.get(URL_VARIABLE):
            raise TransportError("the amqp channel needs a broker (provision it first)")
        url = options.secrets[URL_VARIABLE]
        names: dict[str, Any] = {"queue": f"ipcx-{tag}"}
        if duplex:
            names["back"] = f"ipcx-{tag}-back"
        connection = _connect(url, "setting up the queue")
        try:
            properties = connection._impl.server_properties
            channel = connection.channel()
            for key in ("queue", "back"):
                if key in names:
                    channel.queue_declare(
                        names[key],
                        durable=False,
                        auto_delete=False,
                        arguments={"x-expires": QUEUE_EXPIRES_MS},
                    )
        except pika.exceptions.AMQPError as exc:
            raise TransportError(f"cannot declare the session's queue: {exc}") from None
        finally:
            connection.close()
        parts = urllib.parse.urlsplit(url)
        names.update(
            version=str(properties.get("version", "?")),
            product=str(properties.get("product", "RabbitMQ")),
            where=f"{parts.hostname}:{parts.port or 5672}",
            vhost=urllib.parse.unquote(parts.path[1:] or "/") if parts.path else "/",
        )
        return ChannelPlan(
            mechanism=cls.name,
            duplex=duplex,
            workdir=str(workdir),
            options=options,
            limits=Limits(
                max_wire=MAX_STREAM_MESSAGE,
                overhead=ENVELOPE.size,
                limit_text=f"ipc-explorer caps an AMQP body at {MAX_STREAM_MESSAGE} bytes",
            ),
            names=names,
        )

    @classmethod
    def destroy(cls, plan: ChannelPlan) -> None:
        """Delete the session's queues (idempotent; never raises: a broker gone or frozen
        leaves them to expire by themselves, x-expires)."""
        try:
            # Brief: a broker that does not answer at once at the end is past waiting for.
            connection = _connect(_url_of(plan), "removing the queue", patience=3)
        except Exception:
            super().destroy(plan)
            return
        try:
            for key in ("queue", "back"):
                name = plan.names.get(key)
                if name:
                    with contextlib.suppress(Exception):
                        connection.channel().queue_delete(name)
        finally:
            with contextlib.suppress(Exception):
                connection.close()
            super().destroy(plan)

    @classmethod
    def kernel_facts(cls, plan: ChannelPlan, ends: dict[str, ChannelEnd]) -> Facts:
        """The broker's count of the queue (a passive queue.declare: exact, unlike the
        management API's sampled figures) and, from the kernel, what waits in the consumer's
        socket: with a prefetch window the broker pushes messages there before they are asked
        for."""
        facts = Facts()
        # The broker first: by the time it has answered, a delivery it pushes at once is in
        # the consumer's socket. The kernel's part is read whether or not the broker answers.
        try:
            connection = _connect(_url_of(plan), "queue.declare passive")
            try:
                ok = connection.channel().queue_declare(plan.names["queue"], passive=True)
            finally:
                connection.close()
            source = f"queue.declare (passive) of {plan.names['queue']}: the broker's reply"
            facts.add("queue_depth", ok.method.message_count, source)
            facts.add("consumers", ok.method.consumer_count, source)
        except (TransportError, pika.exceptions.AMQPError) as exc:
            facts.add("queue", f"unreadable: {exc}", "the broker")
        receiver = ends.get("receiver")
        if receiver is not None and "in" in receiver.fds:
            socket_facts = descriptor_facts(receiver.pid, receiver.fds["in"], prefix="consumer_")
            for name in ("consumer_queued_bytes", "consumer_fd_target"):
                if name in socket_facts:
                    facts.items[name] = socket_facts.items[name]
        return facts

    # -- in a child ----------------------------------------------------------------------
    def __init__(self, plan: ChannelPlan, role: Role):
        super().__init__(plan, role)
        self.acknowledges = role == "receiver" and not plan.options.auto_ack
        self._arrived: deque[Frame] = deque()
        self.redelivered = 0
        self._figures: dict[str, Any] = {}
        self._stop_polling = threading.Event()
        self._properties = pika.BasicProperties(
            content_type=plan.options.content_type, delivery_mode=1
        )

    def open(self) -> None:
        names = self.plan.names
        url = _url_of(self.plan)
        self.connection = _connect(url, self.role)
        self.channel = self.connection.channel()
        self.channel.confirm_delivery()  # publishes (data or echoes) return once confirmed
        self._out = names["queue"] if self.role == "sender" else names.get("back")
        incoming = names["queue"] if self.role == "receiver" else names.get("back")
        if incoming:
            self.channel.basic_qos(prefetch_count=self.plan.options.prefetch)
            self.channel.basic_consume(
                incoming,
                self._on_message,
                auto_ack=self.plan.options.auto_ack or self.role == "sender",
            )
        self._measure_frames()
        if self.role == "receiver":
            threading.Thread(target=self._poll_queue, name="queue", daemon=True).start()

    def _on_message(self, _channel: Any, method: Any, _properties: Any, body: bytes) -> None:
        if len(body) < ENVELOPE.size:
            raise TransportError(f"runt AMQP message of {len(body)} bytes")
        if method.redelivered:
            self.redelivered += 1
        seq, t_send, ser_ns, crc = ENVELOPE.unpack_from(body, 0)
        self._arrived.append(
            Frame(seq, t_send, ser_ns, crc, body[ENVELOPE.size :], tag=method.delivery_tag)
        )

    def send(self, seq: int, ser_ns: int, crc: int, payload: bytes) -> int:
        self.limits.check(len(payload))
        body = ENVELOPE.pack(seq, monotonic_ns(), ser_ns, crc) + payload
        t0 = monotonic_ns()
        try:
            self.channel.basic_publish("", self._out, body, self._properties)
        except pika.exceptions.UnroutableError:
            raise TransportError(f"the broker could not route to queue {self._out}") from None
        except pika.exceptions.NackError:
            raise TransportError("the broker refused the message (basic.nack)") from None
        except (pika.exceptions.AMQPError, OSError) as exc:
            raise _gone(exc) from None
        self.last_stage_ns["confirm"] = monotonic_ns() - t0
        return self.wire_size(len(body))

    def _wait(self) -> None:
        """Until the consumer has at least one message (pika delivers them in this thread)."""
        while not self._arrived:
            try:
                self.connection.process_data_events(time_limit=None)
            except (pika.exceptions.AMQPError, OSError) as exc:
                raise _gone(exc) from None

    def recv_batch(self) -> list[Frame]:
        self._wait()
        frames = list(self._arrived)
        self._arrived.clear()
        return frames

    def recv(self) -> Frame:
        self._wait()
        return self._arrived.popleft()

    def acknowledge_up_to(self, tag: int) -> None:
        try:
            self.channel.basic_ack(tag, multiple=True)
        except (pika.exceptions.AMQPError, OSError) as exc:
            raise _gone(exc) from None

    def keep_alive(self) -> None:
        """Heartbeats (and confirms, deliveries) go through pika's loop only while it runs."""
        connection = getattr(self, "connection", None)
        if connection is not None and connection.is_open:
            connection.process_data_events(time_limit=0)

    def channel_fds(self) -> dict[str, int]:
        """The connection's socket to the broker (pika keeps it inside its transport)."""
        try:
            fd = self.connection._impl._transport._sock.fileno()
        except AttributeError:
            return {}
        return {"in": fd, "out": fd}

    def close(self) -> None:
        self._stop_polling.set()
        connection = getattr(self, "connection", None)
        if connection is not None:
            try:
                connection.close()
            except (pika.exceptions.AMQPError, OSError):
                pass

    def _poll_queue(self) -> None:
        """The queue's figures from the broker, refreshed off the message loop."""
        while not self._stop_polling.wait(QUEUE_POLL_S):
            try:
                self._figures = queue_figures(self.plan, self.plan.names["queue"])
            except Exception as exc:  # a broker going away is reported by the loop, not here
                self._figures = {"queue_error": f"{type(exc).__name__}: {exc}"}

    def live_state(self) -> dict[str, Any]:
        """The broker's figures of the queue (sampled off the loop) and the redeliveries
        this consumer has seen."""
        figures = dict(self._figures)
        figures.pop("source", None)
        return {**figures, "redelivered": self.redelivered}

    # -- what the bytes are ----------------------------------------------------------------
    def _measure_frames(self) -> None:
        """The method and content header frames have a fixed size for this route and these
        properties: measured once, so that a send counts its wire bytes without building
        them."""
        self._head_bytes = len(self._method_frame(True)) + len(
            pika.frame.Header(CHANNEL, 0, self._properties).marshal()
        )

    def wire_size(self, body: int) -> int:
        """Bytes of one publish on the wire: method frame, content header frame, and the
        body in frames of at most frame_max."""
        frames = max(1, -(-body // BODY_PER_FRAME))
        return self._head_bytes + body + frames * (FRAME_HEADER + FRAME_END)

    def _method_frame(self, forward: bool) -> bytes:
        route = self.plan.names["queue"] if forward else self.plan.names.get("back", "")
        publish = pika.spec.Basic.Publish(exchange="", routing_key=route)
        return pika.frame.Method(CHANNEL, publish).marshal()

    def trailer_size(self, frame: Frame) -> int:
        return FRAME_END

    def wire_image(self, frame: Frame, forward: bool = True) -> tuple[bytes, list[Span]]:
        """The publish as it crosses the socket to the broker: a Basic.Publish method frame,
        a content header frame with the properties, and the body (the envelope, then the
        payload) in frames of at most frame_max."""
        envelope = ENVELOPE.pack(frame.seq, frame.t_send, frame.ser_ns, frame.crc)
        body = envelope + frame.payload
        method = self._method_frame(forward)
        header = pika.frame.Header(CHANNEL, len(body), self._properties).marshal()
        spans = _frame_spans(0, method, "amqp.method", "Basic.Publish method frame")
        spans += _frame_spans(len(method), header, "amqp.header", "content header frame")
        wire = bytearray(method + header)
        for start in range(0, len(body), BODY_PER_FRAME):
            part = body[start : start + BODY_PER_FRAME]
            at = len(wire)
            label = f"body frame: type, channel, size {len(part)}"
            spans.append(Span(at, at + FRAME_HEADER, "amqp.body.frame", "framing", label))
            if not start:
                spans += envelope_spans(at + FRAME_HEADER, frame)
            wire += pika.frame.Body(CHANNEL, part).marshal()
            if start + BODY_PER_FRAME < len(body):  # an end octet inside the payload's bytes
                spans.append(Span(len(wire) - 1, len(wire), "amqp.body.end", "framing", "0xCE"))
        spans.append(Span(len(wire) - 1, len(wire), "amqp.body.end", "framing", "frame end 0xCE"))
        return bytes(wire), spans

    def kernel_object(self) -> str:
        names, options = self.plan.names, self.plan.options
        where = "private node" if options.broker_private else "broker"
        broker = f"{names['product']} {names['version']}"
        return f"queue {names['queue']} on {broker} ({where} {names['where']})"

    def framing_text(self) -> str:
        return (
            "AMQP frames on the broker's TCP connection: Basic.Publish (method frame), the "
            f"content header (size, properties), then the body ({ENVELOPE.size}-byte envelope "
            "and the payload) in frames of at most frame_max; each frame is type, channel, "
            "size, payload and the 0xCE end octet"
        )

    def describe(self) -> dict[str, Any]:
        names, options = self.plan.names, self.plan.options
        return {
            **super().describe(),
            "broker": {
                "product": names.get("product"),
                "version": names.get("version"),
                "where": names.get("where"),
                "private": options.broker_private,
                "url": options.broker,
                "prefetch": options.prefetch,
                "acks": "automatic (no acks)" if options.auto_ack else "manual",
                "confirms": True,
            },
        }


def _frame_spans(at: int, data: bytes, path: str, label: str) -> list[Span]:
    end = at + len(data)
    return [
        Span(at, at + FRAME_HEADER, f"{path}.frame", "framing", f"{label}: type, channel, size"),
        Span(at + FRAME_HEADER, end - FRAME_END, path, "framing", f"{label}: {len(data)} B frame"),
        Span(end - FRAME_END, end, f"{path}.end", "framing", "frame end 0xCE"),
    ]


__all__ = ["AmqpTransport", "private_broker", "redact", "stop_private_broker"]
