"""XML conformance: elements, attributes, text, entities, CDATA, comments and namespaces each
annotated (every byte in one span); entity-expansion bombs and external entities rejected."""

from __future__ import annotations

import pytest

from ipc_explorer.codecs import DecodeError, get_codec

pytestmark = pytest.mark.timeout(60)

CODEC = get_codec("xml")


def spans_of(data: bytes) -> list[tuple[bytes, str]]:
    spans = CODEC.annotate(data)
    covered = [0] * len(data)
    for s in spans:
        for i in range(s.start, s.end):
            covered[i] += 1
    assert covered == [1] * len(data), "every byte in exactly one leaf span"
    return [(data[s.start : s.end], s.kind) for s in spans]


def test_elements_attributes_and_text():
    data = b'<message type="map"><name>Ada</name><n type="int">36</n></message>'
    spans = spans_of(data)
    assert (b"message", "tag") in spans and (b"name", "tag") in spans
    assert (b"type", "attr") in spans and (b"map", "header") in spans
    assert (b"Ada", "string") in spans and (b"36", "int") in spans
    assert CODEC.decode(data) == {"name": "Ada", "n": 36}


@pytest.mark.parametrize(
    "text,value",
    [
        (b"a &amp; b", "a & b"),
        (b"&lt;tag&gt;", "<tag>"),
        (b"&#65;&#x42;", "AB"),
        (b"&quot;&apos;", "\"'"),
    ],
)
def test_entities_are_annotated_and_decoded(text, value):
    data = b'<message type="map"><t>' + text + b"</t></message>"
    spans = spans_of(data)
    assert any(b"&" in chunk for chunk, _ in spans)  # each reference in a span of its own
    assert CODEC.decode(data) == {"t": value}


def test_cdata_and_comments():
    data = b'<message type="map"><!-- note --><t><![CDATA[<not a tag> & raw]]></t></message>'
    spans = spans_of(data)
    assert any(kind == "comment" for _, kind in spans)
    assert any(b"CDATA" in chunk for chunk, _ in spans)
    assert CODEC.decode(data) == {"t": "<not a tag> & raw"}


def test_namespace_declarations_and_prefixed_names():
    data = (
        b'<message xmlns="urn:d" xmlns:x="urn:x" type="map">'
        b'<x:a type="int">1</x:a><b>t</b></message>'
    )
    spans = spans_of(data)
    assert (b"xmlns", "attr") in spans and (b"xmlns:x", "attr") in spans
    assert (b"urn:x", "string") in spans
    assert (b"x:a", "tag") in spans
    assert CODEC.decode(data) == {"x:a": 1, "b": "t"}


@pytest.mark.parametrize(
    "data",
    [
        # billion laughs: entities that expand to entities
        b'<?xml version="1.0"?><!DOCTYPE m [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;">'
        b'<!ENTITY c "&b;&b;&b;&b;">]><message>&c;</message>',
        # an external entity (would read a file)
        b'<!DOCTYPE m [<!ENTITY x SYSTEM "file:///etc/passwd">]><message>&x;</message>',
        # an undeclared entity
        b"<message>&nope;</message>",
    ],
)
def test_entity_expansion_and_external_entities_are_refused(data):
    with pytest.raises(DecodeError) as error:
        CODEC.decode(data)
    assert 0 <= error.value.offset < len(data)


def test_malformed_xml_says_where():
    data = b'<message type="map"><a>1</b></message>'
    with pytest.raises(DecodeError) as error:
        CODEC.decode(data)
    assert error.value.offset == data.index(b"</b>") + 2  # at the name that does not match
