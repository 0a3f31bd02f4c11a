"""The same payload in JSON, XML, MessagePack and a struct, byte by byte."""

from __future__ import annotations

from ipc_explorer.codecs import codec_names, get_codec
from ipc_explorer.codecs.sample import sample_payload
from ipc_explorer.inspector.compare import compare_formats
from ipc_explorer.session import SessionConfig
from ipc_explorer.teach.lessons.base import Check, Lesson

#: The message of the lesson: sequence 7 with 16 bytes of data, as the flow sends them.
SEQ, SIZE = 7, 16


class Formats(Lesson):
    name = "formats"
    face = "inspector"

    def session_config(self) -> SessionConfig:
        return SessionConfig(mechanism="unix-stream", format="msgpack", size=SIZE, rate=10)

    async def check(self) -> list[Check]:
        value = sample_payload(SEQ, SIZE)
        rows = {row.format: row for row in compare_formats(value, repeats=5)}
        round_trips = {name: get_codec(name).decode(get_codec(name).encode(value)) == value
                       for name in codec_names()}  # fmt: skip
        sizes = {name: row.size for name, row in rows.items()}
        return [
            Check(
                "all four carry the same value: each decodes back to what was encoded",
                {"decodes_back": round_trips},
                all(round_trips.values()),
            ),
            Check(
                "the struct is the smallest and XML the largest",
                {"bytes": sizes},
                min(sizes, key=sizes.get) == "struct" and max(sizes, key=sizes.get) == "xml",
            ),
            Check(
                "every byte is accounted for: values + keys + syntax = the message",
                {
                    name: {
                        "values": row.value_bytes,
                        "keys": row.key_bytes,
                        "syntax": row.syntax_bytes,
                        "total": row.size,
                    }
                    for name, row in rows.items()
                },
                all(
                    row.value_bytes + row.key_bytes + row.syntax_bytes == row.size
                    for row in rows.values()
                ),
            ),
            Check(
                "only the self-describing formats spend bytes on keys",
                {name: row.key_bytes for name, row in rows.items()},
                rows["struct"].key_bytes == 0
                and all(rows[n].key_bytes > 0 for n in ("json", "xml", "msgpack")),
            ),
        ]
