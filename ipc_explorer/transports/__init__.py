"""IPC mechanisms, one module each, registered by the name used on the command line."""

from __future__ import annotations

import importlib

from ipc_explorer.transports.base import (
    ChannelClosed,
    ChannelEnd,
    ChannelPlan,
    Frame,
    Limits,
    MessageTooLarge,
    RecvTimeout,
    Role,
    Transport,
    TransportError,
    TransportOptions,
)

_REGISTRY: dict[str, type[Transport]] = {}

#: Command-line names, in the order a user meets them (simplest kernel object first).
MECHANISMS = (
    "pipe", "fifo", "unix-stream", "unix-dgram", "tcp", "udp", "shm", "mq",
    "http", "http-close", "https", "https-close", "amqp",
)  # fmt: skip


def register(cls: type[Transport]) -> type[Transport]:
    _REGISTRY[cls.name] = cls
    return cls


def get_transport(name: str) -> type[Transport]:
    """A transport class by name; ValueError listing the valid names otherwise."""
    if name not in MECHANISMS:
        raise ValueError(f"unknown mechanism {name!r}; valid mechanisms: {', '.join(MECHANISMS)}")
    if name not in _REGISTRY:
        importlib.import_module(f"ipc_explorer.transports.{name.replace('-', '_')}")
    return _REGISTRY[name]


async def shutdown() -> None:
    """Release what mechanisms keep for the whole process (a private broker): at the end of a
    command or of the app."""
    for cls in list(_REGISTRY.values()):
        await cls.shutdown()


__all__ = [
    "MECHANISMS",
    "ChannelClosed",
    "ChannelEnd",
    "ChannelPlan",
    "Frame",
    "Limits",
    "MessageTooLarge",
    "RecvTimeout",
    "Role",
    "Transport",
    "TransportError",
    "TransportOptions",
    "get_transport",
    "register",
    "shutdown",
]
