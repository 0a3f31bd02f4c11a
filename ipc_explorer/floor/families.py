"""The floor's mechanism families by mechanism name.

Each family module moves messages one way of its own and has the same three entry points:
``sender`` and ``receiver`` (the loop of each child) and ``wire_sizes`` (what it can carry).
"""

from __future__ import annotations

from types import ModuleType

from ipc_explorer.floor import datagrams, http, mq, shm, streams

FAMILIES = (streams, datagrams, http, shm, mq)
_BY_MECHANISM = {mechanism: family for family in FAMILIES for mechanism in family.MECHANISMS}


def family_of(mechanism: str) -> ModuleType:
    return _BY_MECHANISM[mechanism]
