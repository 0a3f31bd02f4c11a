"""The same value in every format: how many bytes each needs, what those bytes are for, and
how long encoding and decoding take here."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from ipc_explorer.codecs import CodecError, codec_names, get_codec
from ipc_explorer.telemetry.percentiles import median

VALUE_KINDS = {"string", "int", "float", "bool", "null", "bytes"}
KEY_KINDS = {"key", "tag", "attr"}
#: Timing repeats: enough for a stable median of a small message, bounded for a large one.
REPEATS = 51


@dataclass
class FormatCost:
    format: str
    size: int = 0
    value_bytes: int = 0  # the data itself
    key_bytes: int = 0  # field names (keys, XML tags and attribute names)
    syntax_bytes: int = 0  # type tags, lengths, punctuation, whitespace
    encode_us: float = 0.0
    decode_us: float = 0.0
    error: str = ""


def _median_us(fn: Any, repeats: int) -> float:
    """The median time of ``repeats`` calls, in µs: one slow call (a GC pause) moves no row."""
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter_ns()
        fn()
        times.append(time.perf_counter_ns() - t0)
    return median(times) / 1000


def compare_formats(value: Any, repeats: int = REPEATS) -> list[FormatCost]:
    """One row per format; a format the value does not fit in says why instead."""
    rows = []
    for name in codec_names():
        codec = get_codec(name)
        row = FormatCost(name)
        try:
            data = codec.encode(value)
            spans = codec.annotate(data)
        except CodecError as exc:
            row.error = str(exc)
            rows.append(row)
            continue
        row.size = len(data)
        for span in spans:
            n = span.end - span.start
            if span.kind in VALUE_KINDS:
                row.value_bytes += n
            elif span.kind in KEY_KINDS:
                row.key_bytes += n
            else:
                row.syntax_bytes += n
        budget = max(3, min(repeats, 2_000_000 // max(1, len(data))))
        row.encode_us = _median_us(lambda c=codec: c.encode(value), budget)
        row.decode_us = _median_us(lambda c=codec, d=data: c.decode(d), budget)
        rows.append(row)
    return rows
