"""The message the sender generates when the user has not injected one.

It is small but mixed (an int, a short string, a float, a blob) so that every format shows
keys, type tags and values in the bytes panel. ``size`` is the length of the ``data`` blob:
size 0 is a valid message, and the encoded message is ``size`` plus the format's overhead.
"""

from __future__ import annotations

import string

_ALPHABET = string.ascii_letters
_fillers: dict[int, str] = {}


def _filler(seq: int, size: int) -> str:
    base = _fillers.get(size)
    if base is None:
        base = (_ALPHABET * (size // len(_ALPHABET) + 2))
        if len(_fillers) > 8:
            _fillers.clear()
        _fillers[size] = base
    start = seq % len(_ALPHABET)
    return base[start : start + size]


def sample_payload(seq: int, size: int) -> dict:
    """The generated payload for message ``seq`` with a ``size``-character ASCII blob."""
    return {"id": seq, "kind": "sample", "value": seq * 0.5, "data": _filler(seq, size)}
