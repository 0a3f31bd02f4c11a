"""HTTP/1.1 with ``Connection: close``: a new TCP connection for every request.

What keep-alive saves, shown by its absence: each message pays a TCP handshake (the
``connect`` stage) and the server accepts a connection per request, then closes it first.
"""

from __future__ import annotations

from ipc_explorer.transports import register
from ipc_explorer.transports.http import HttpTransport


@register
class HttpCloseTransport(HttpTransport):
    name = "http-close"
    title = "HTTP/1.1, a connection per request (loopback)"
    per_request = True
    extra_stages = ("connect",)
