"""Serialization formats, one module each, registered by name."""

from __future__ import annotations

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


def _load_builtin() -> None:
    # Imported for their @register side effect.
    import importlib

    for module in ("json_codec", "xml_codec", "msgpack_codec", "struct_codec"):
        try:
            importlib.import_module(f"ipc_explorer.codecs.{module}")
        except ModuleNotFoundError:  # TEMP
            pass


def codec_names() -> list[str]:
    _load_builtin()
    return list(_REGISTRY)


def get_codec(name: str) -> Codec:
    """A codec instance by name; ValueError listing the valid names otherwise."""
    _load_builtin()
    try:
        return _REGISTRY[name]()
    except KeyError:
        raise ValueError(
            f"unknown format {name!r}; valid formats: {', '.join(_REGISTRY)}"
        ) from None


__all__ = [
    "SPAN_KINDS",
    "Codec",
    "CodecError",
    "DecodeError",
    "EncodeError",
    "PartialDecode",
    "Span",
    "codec_names",
    "get_codec",
    "register",
]
