"""Serialization formats, one module each, registered by name."""

from __future__ import annotations

import importlib

from ipc_explorer.codecs.base import (
    SPAN_KINDS,
    Codec,
    CodecError,
    DecodeError,
    EncodeError,
    PartialDecode,
    Span,
)

_REGISTRY: dict[str, type[Codec]] = {}


def register(cls: type[Codec]) -> type[Codec]:
    _REGISTRY[cls.name] = cls
    return cls


#: Format names and their modules, imported on first use (a child loads only its own format).
FORMATS = {
    "json": "json_codec",
    "xml": "xml_codec",
    "msgpack": "msgpack_codec",
    "struct": "struct_codec",
}


def codec_names() -> list[str]:
    return list(FORMATS)


def get_codec(name: str) -> Codec:
    """A codec instance by name; ValueError listing the valid names otherwise."""
    if name not in FORMATS:
        raise ValueError(f"unknown format {name!r}; valid formats: {', '.join(FORMATS)}")
    if name not in _REGISTRY:
        importlib.import_module(f"ipc_explorer.codecs.{FORMATS[name]}")
    return _REGISTRY[name]()


__all__ = [
    "SPAN_KINDS",
    "Codec",
    "CodecError",
    "DecodeError",
    "EncodeError",
    "FORMATS",
    "PartialDecode",
    "Span",
    "codec_names",
    "get_codec",
    "register",
]
