"""The message the sender generates when the user has not injected one.

It is small but mixed (an int, a short string, a float, a blob) so that every format shows
keys, type tags and values in the bytes panel. ``size`` is the length of the ``data`` blob:
size 0 is a valid message, and the encoded message is ``size`` plus the format's overhead.
"""

from __future__ import annotations

import string
from functools import lru_cache

_ALPHABET = string.ascii_letters
#: Blobs up to this size are made once per rotation and reused (52 of them per size).
_PRECOMPUTED_MAX = 64 * 1024


class SampleGenerator:
    """Makes the payload of message ``seq`` for one blob size, cheaply: the sender calls it
    once per message, so the blob (a rotation of the alphabet) is prepared in advance."""

    def __init__(self, size: int):
        self.size = size
        self._base = _ALPHABET * (size // len(_ALPHABET) + 2)
        self._blobs = (
            [self._base[i : i + size] for i in range(len(_ALPHABET))]
            if size <= _PRECOMPUTED_MAX
            else None
        )

    def blob(self, seq: int) -> str:
        start = seq % len(_ALPHABET)
        if self._blobs is not None:
            return self._blobs[start]
        return self._base[start : start + self.size]

    def __call__(self, seq: int) -> dict:
        return {"id": seq, "kind": "sample", "value": seq * 0.5, "data": self.blob(seq)}


@lru_cache(maxsize=8)
def _generator(size: int) -> SampleGenerator:
    return SampleGenerator(size)


def sample_payload(seq: int, size: int) -> dict:
    """The generated payload for message ``seq`` with a ``size``-character ASCII blob."""
    return _generator(size)(seq)
