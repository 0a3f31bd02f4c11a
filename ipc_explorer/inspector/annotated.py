"""One message's bytes, explained: framing spans from the transport, payload spans from the
codec, in one list that covers the wire bytes in order. Any front end can draw it."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from ipc_explorer.codecs import Codec, DecodeError, Span


@dataclass(frozen=True)
class AnnotatedMessage:
    wire: bytes
    spans: list[Span]
    framing_size: int
    payload_size: int
    truncated: bool
    error: str | None = None

    @property
    def overhead_percent(self) -> float:
        total = self.framing_size + self.payload_size
        return 100.0 * self.framing_size / total if total else 0.0

    def span_at(self, offset: int) -> Span | None:
        for span in self.spans:
            if span.start <= offset < span.end:
                return span
        return None


def payload_of(sample: dict[str, Any]) -> bytes:
    """The payload's bytes in a sample's wire image (framing may follow it: AMQP's frame end)."""
    at = sample.get("payload_at", sample["framing_size"])
    return sample["wire"][at : at + sample["size"]]


def annotate_sample(sample: dict[str, Any], codec: Codec) -> AnnotatedMessage:
    """Spans for a telemetry sample (see children.runtime.ChildRuntime.sample): the
    transport's framing spans wherever they are, the codec's spans over the payload."""
    wire: bytes = sample["wire"]
    framing = sample["framing_size"]
    at = sample.get("payload_at", framing)
    spans = [
        Span(start, end, path, "framing", label) for start, end, path, label in sample["framing"]
    ]
    covered = max((s.end for s in spans if s.end <= at), default=0)
    if covered < at:  # framing bytes the transport did not itemise
        spans.append(Span(covered, at, "framing", "framing", "framing"))
    error = None
    if sample.get("truncated"):
        kept = len(wire) - at
        payload_spans: list[Span] = [Span(0, kept, "$", "bytes", f"first {kept} bytes")]
        error = f"message of {sample['wire_size']} bytes: only the first {len(wire)} are kept"
    else:
        payload = payload_of(sample)
        try:
            payload_spans = codec.annotate(payload)
        except DecodeError as exc:
            payload_spans = list(exc.partial.spans)
            error = str(exc)
            end = payload_spans[-1].end if payload_spans else 0
            if end < len(payload):
                payload_spans.append(Span(end, len(payload), "$", "bytes", "undecoded"))
    spans += [replace(s, start=s.start + at, end=s.end + at) for s in payload_spans]
    spans.sort(key=lambda s: s.start)
    return AnnotatedMessage(
        wire=wire,
        spans=spans,
        framing_size=framing,
        payload_size=sample["size"],
        truncated=bool(sample.get("truncated")),
        error=error,
    )
