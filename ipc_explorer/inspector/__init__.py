"""The inspector: any message's bytes explained and compared.

``decoder`` (any bytes to spans and a tree, the format guessed and the reason said),
``annotated`` (a flow message: the transport's framing spans and the codec's payload spans in
one list), ``diff`` (two messages by structure, with each change's bytes) and ``compare``
(the same value in every format: bytes by purpose, encode and decode time).
"""
