"""Two decoded messages compared by structure: which paths were added, removed or changed
(or changed type), each with the bytes that encode it in either message."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ipc_explorer.codecs import Span
from ipc_explorer.codecs.tree import item_path, member_path

#: Stop listing after this many changes (two unrelated 1 MB messages differ everywhere).
MAX_CHANGES = 1000


@dataclass(frozen=True)
class Change:
    kind: str  # added, removed, changed, type changed
    path: str
    old: Any = None
    new: Any = None
    old_bytes: tuple[int, int] | None = None
    new_bytes: tuple[int, int] | None = None

    def as_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "path": self.path,
            "old": _jsonable(self.old),
            "new": _jsonable(self.new),
            "old_bytes": list(self.old_bytes) if self.old_bytes else None,
            "new_bytes": list(self.new_bytes) if self.new_bytes else None,
        }


def _jsonable(value: Any) -> Any:
    if isinstance(value, bytes | bytearray):
        return value.hex()
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    return value


def byte_range(spans: list[Span], path: str) -> tuple[int, int] | None:
    """The bytes of the value at ``path``: every span at that path or below it."""
    inside = [
        s
        for s in spans
        if s.kind != "whitespace"
        and (s.path == path or s.path.startswith(path + ".") or s.path.startswith(path + "["))
    ]
    if not inside:
        return None
    return min(s.start for s in inside), max(s.end for s in inside)


def type_name(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int"
    if isinstance(value, float):
        return "float"
    if isinstance(value, str):
        return "string"
    if isinstance(value, bytes | bytearray):
        return "bytes"
    if isinstance(value, dict):
        return "map"
    if isinstance(value, list | tuple):
        return "array"
    return type(value).__name__


def diff_values(old: Any, new: Any, path: str = "$") -> list[tuple[str, str, Any, Any]]:
    """(kind, path, old, new) for every difference, depth first; iterative, so that a deeply
    nested message cannot exhaust the stack."""
    out: list[tuple[str, str, Any, Any]] = []
    stack: list[tuple[str, Any, Any]] = [(path, old, new)]
    while stack and len(out) < MAX_CHANGES:
        p, a, b = stack.pop()
        ta, tb = type_name(a), type_name(b)
        if ta != tb:
            out.append(("type changed", p, a, b))
        elif ta == "map":
            for key in a:
                if key not in b:
                    out.append(("removed", member_path(p, key), a[key], None))
            for key in b:
                if key not in a:
                    out.append(("added", member_path(p, key), None, b[key]))
            for key in reversed([k for k in a if k in b]):
                stack.append((member_path(p, key), a[key], b[key]))
        elif ta == "array":
            common = min(len(a), len(b))
            out.extend(("removed", item_path(p, i), a[i], None) for i in range(common, len(a)))
            out.extend(("added", item_path(p, i), None, b[i]) for i in range(common, len(b)))
            for i in reversed(range(common)):
                stack.append((item_path(p, i), a[i], b[i]))
        elif a != b:
            out.append(("changed", p, a, b))
    return out


def diff_messages(
    old_value: Any, old_spans: list[Span], new_value: Any, new_spans: list[Span]
) -> list[Change]:
    return [
        Change(
            kind,
            path,
            a,
            b,
            byte_range(old_spans, path) if kind != "added" else None,
            byte_range(new_spans, path) if kind != "removed" else None,
        )
        for kind, path, a, b in diff_values(old_value, new_value)
    ]
