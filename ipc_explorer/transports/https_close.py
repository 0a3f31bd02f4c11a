"""HTTPS with a new connection, and so a TLS handshake, for every request.

The client offers the session of its previous connection (a TLS 1.3 ticket), so that after the
first full handshake the server resumes instead: no certificate, one round trip still. The
counts say how many did (``resumptions``); the ``handshake`` stage times each.
"""

from __future__ import annotations

from ipc_explorer.transports import register
from ipc_explorer.transports.https import HttpsTransport


@register
class HttpsCloseTransport(HttpsTransport):
    name = "https-close"
    title = "HTTPS: TLS 1.3, a connection per request (loopback)"
    per_request = True
    extra_stages = ("connect", "handshake")

    def framing_text(self) -> str:
        return (
            f"{super().framing_text()}; a TLS handshake per request, resuming the previous "
            "connection's session where the server accepts its ticket (see resumptions)"
        )
