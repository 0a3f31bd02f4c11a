"""What the socket mechanisms share: a listening or bound socket made by the parent and
inherited by the receiver (as with systemd socket activation), so a port in use is reported
before any child starts."""

from __future__ import annotations

import socket

from ipc_explorer.transports.base import (
    ChannelPlan,
    MessageTooLarge,
    Role,
    TransportError,
    TransportOptions,
)
from ipc_explorer.transports.stream import (
    ByteStreamTransport,
    FrameReader,
    closed_error,
    socket_writer,
)


def bind_error(exc: OSError, what: str) -> TransportError:
    if exc.errno == 98:  # EADDRINUSE
        return TransportError(
            f"{what} is already in use (EADDRINUSE); pick another port or stop the program using it"
        )
    if exc.errno == 13:  # EACCES
        return TransportError(f"no permission to bind {what} (EACCES)")
    return TransportError(f"cannot bind {what}: {exc.strerror}")


def socket_buffer(sock: socket.socket) -> int:
    return sock.getsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF)


def listen_on(family: int, address: str | tuple[str, int], what: str) -> socket.socket:
    """A listening socket made by the parent, for the receiver to inherit."""
    listener = socket.socket(family, socket.SOCK_STREAM)
    try:
        listener.bind(address)
        listener.listen(1)
    except OSError as exc:
        listener.close()
        raise bind_error(exc, what) from None
    return listener


def tcp_listener(options: TransportOptions, what: str) -> tuple[socket.socket, int]:
    """A TCP listener on the options' host and port (0: any free one), and its port."""
    address = (options.host, options.port)
    listener = listen_on(socket.AF_INET, address, f"{what} {options.host}:{options.port}")
    return listener, listener.getsockname()[1]


def open_connection(
    plan: ChannelPlan, role: Role, family: int, address: str | tuple[str, int], peer: str
) -> socket.socket:
    """The receiver accepts one connection on the inherited listener; the sender connects."""
    if role == "receiver":
        listener = socket.socket(fileno=plan.fds["receiver"]["listen"])
        try:
            conn, _ = listener.accept()
        finally:
            listener.close()
        return conn
    conn = socket.socket(family, socket.SOCK_STREAM)
    try:
        conn.connect(address)
    except OSError as exc:
        conn.close()
        raise TransportError(f"cannot connect to the {peer}: {exc.strerror}") from None
    return conn


def set_nodelay(sock: socket.socket, nagle: bool) -> None:
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 0 if nagle else 1)


class ConnectedStreamTransport(ByteStreamTransport):
    """A byte-stream socket: the receiver accepts on the inherited listener, the sender connects."""

    family: int

    def connect_address(self) -> str | tuple[str, int]:
        raise NotImplementedError

    def tune(self, sock: socket.socket) -> None:
        """Per-connection options (TCP_NODELAY)."""

    def open(self) -> None:
        peer = "receiver" if self.role == "sender" else "sender"
        conn = open_connection(self.plan, self.role, self.family, self.connect_address(), peer)
        self.tune(conn)
        self.sock = conn
        self._write = socket_writer(conn, peer, self.plan.options.split_writes)
        self._reader = FrameReader(conn.recv_into, peer)

    def channel_fds(self) -> dict[str, int]:
        sock = getattr(self, "sock", None)
        return {"in": sock.fileno(), "out": sock.fileno()} if sock is not None else {}

    def close(self) -> None:
        sock = getattr(self, "sock", None)
        if sock is not None:
            sock.close()


def dgram_send(
    sock: socket.socket, header: bytes, payload: bytes, peer: str, limit_text: str
) -> int:
    try:
        return sock.sendmsg((header, payload))
    except (ConnectionRefusedError, BrokenPipeError, ConnectionResetError) as exc:
        raise closed_error(exc, peer) from None
    except OSError as exc:
        if exc.errno == 90:  # EMSGSIZE
            raise MessageTooLarge(f"message too large ({exc.strerror}); {limit_text}") from None
        raise
