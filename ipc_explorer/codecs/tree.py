"""The decoded tree every codec describes: how a value's path is written (``$.name``,
``$["a b"]``, ``$[2]``), how deep containers may nest, and how a string is shortened for a
label. One home, so that every format names and bounds values the same way."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from itertools import chain, compress
from typing import Any, NoReturn

from ipc_explorer.codecs.base import DecodeError, PartialDecode, Span

#: Deepest container nesting any codec accepts; deeper input would blow recursive consumers.
MAX_DEPTH = 512

_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")


def member_path(parent: str, key: Any) -> str:
    """Path of ``parent[key]``: ``$.name`` for identifiers, ``$["a b"]`` otherwise."""
    if isinstance(key, str):
        if _IDENTIFIER.match(key):
            return f"{parent}.{key}"
        quoted = json.dumps(key, ensure_ascii=False)
        return f"{parent}[{_printable(quoted)}]"
    if key is None or isinstance(key, (bool, int, float)):
        return f"{parent}[{json.dumps(key)}]"
    return f"{parent}[{key!r}]"


def item_path(parent: str, index: int) -> str:
    """Path of list item ``index``."""
    return f"{parent}[{index}]"


def short_text(text: str, limit: int = 24) -> str:
    """A quoted, shortened string for labels (long blobs would swamp the inspector)."""
    if len(text) <= limit:
        return _printable(json.dumps(text, ensure_ascii=False))
    head = json.dumps(text[:limit], ensure_ascii=False)[:-1]
    return _printable(f'{head}…" ({len(text)} chars)')


def _printable(text: str) -> str:
    # Lone surrogates are legal in a Python str but cannot reach a terminal.
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


def exceeds_depth(value: Any, limit: int = MAX_DEPTH, budget: int = -1) -> bool | None:
    """True when lists/tuples/dicts nest deeper than ``limit``; level by level, no recursion.

    Each level is gathered and filtered by C-level iterators, so the cost per value is small.
    With a ``budget`` (children to look at), None when the budget runs out first: callers try
    a cheap walk, then a cheap bound from the bytes, then the full walk.
    """
    if not isinstance(value, _CONTAINERS):
        return False
    level = [value]
    for _ in range(limit):
        dicts = [item for item in level if isinstance(item, dict)]
        sequences = (
            [item for item in level if not isinstance(item, dict)]
            if len(dicts) < len(level)
            else []
        )
        children = list(
            chain(chain.from_iterable(map(dict.values, dicts)), chain.from_iterable(sequences))
        )
        if budget >= 0:
            budget -= len(children)
            if budget < 0:
                return None
        types = set(map(type, children))
        if types <= _SCALAR_TYPES:
            return False
        if types <= _KNOWN_TYPES:
            level = list(
                compress(children, map(_EXACT_CONTAINERS.__contains__, map(type, children)))
            )
        else:  # subclasses, e.g. an OrderedDict handed to encode
            level = [child for child in children if isinstance(child, _CONTAINERS)]
        if not level:
            return False
    return True


_CONTAINERS = (dict, list, tuple)
_EXACT_CONTAINERS = frozenset(_CONTAINERS)
_SCALAR_TYPES = frozenset({str, int, float, bool, type(None), bytes})
_KNOWN_TYPES = _SCALAR_TYPES | _EXACT_CONTAINERS


def too_deep(
    value: Any, data: bytes, bytes_per_level: int, openers: Callable[[bytes], int]
) -> bool:
    """Whether ``value`` (``data`` decoded) nests deeper than MAX_DEPTH, cheaply.

    Each level costs at least ``bytes_per_level`` bytes, so short messages are settled by their
    length; most others by a short walk (a big blob is one child); the rest by counting the
    bytes that can open a container (``openers``, an upper bound on the depth) before the full
    walk.
    """
    if len(data) <= bytes_per_level * MAX_DEPTH:
        return False
    verdict = exceeds_depth(value, budget=256)
    if verdict is None:
        verdict = openers(data) > MAX_DEPTH and bool(exceeds_depth(value))
    return verdict


class SpanReader:
    """Base of a codec's byte walker: the bytes, the spans read so far and the value built so
    far, which an error carries with its offset (the inspector shows the partial tree)."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.spans: list[Span] = []
        self.root: Any = None

    def fail(self, offset: int, message: str) -> NoReturn:
        raise DecodeError(offset, message, PartialDecode(self.root, self.spans))

    def span(self, start: int, end: int, path: str, kind: str, label: str) -> None:
        self.spans.append(Span(start, end, path, kind, label))
