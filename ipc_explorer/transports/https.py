"""HTTPS: HTTP/1.1 keep-alive inside TLS 1.3, on loopback, verified for real.

The parent makes a throwaway CA and a certificate for the server's address (an IP SAN) in the
session's private directory; the receiver serves with that key, the sender verifies against
that CA with hostname checking on. One full handshake per connection; every request then pays
the record layer (a 5-byte header, a 16-byte tag and a content-type byte per record), counted
exactly from the bytes that reach the socket.
"""

from __future__ import annotations

import ssl
from pathlib import Path

from ipc_explorer.transports import register
from ipc_explorer.transports.http import HttpTransport
from ipc_explorer.transports.tls import client_context, make_certificates, server_context


@register
class HttpsTransport(HttpTransport):
    name = "https"
    title = "HTTPS: TLS 1.3 (loopback)"
    scheme = "https"
    secure = True

    @classmethod
    def channel_files(cls, workdir: Path, host: str) -> dict[str, str]:
        return make_certificates(workdir, host)

    def server_tls(self) -> ssl.SSLContext:
        return server_context(self.plan.names["server_pem"])

    def client_tls(self) -> ssl.SSLContext:
        return client_context(self.plan.names["ca_file"])

    def kernel_object(self) -> str:
        return f"{super().kernel_object()}; its CA (curl --cacert): {self.plan.names['ca_file']}"

    def framing_text(self) -> str:
        return (
            f"{super().framing_text()}; all of it inside TLS 1.3 records (5-byte header, "
            "16-byte tag, 1 content-type byte each), the server verified against a throwaway CA"
        )
