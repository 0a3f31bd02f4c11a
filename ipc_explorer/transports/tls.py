"""TLS 1.3 for the https mechanisms: a throwaway CA and server certificate made by the parent,
and connections driven over memory BIOs.

With an ``SSLObject`` over two ``MemoryBIO``s the socket stays a plain socket: every byte that
reaches it (handshake messages, record headers, tags) passes through this module and is counted
exactly, not estimated from the record layout. The client verifies the server against the
session's CA with hostname checking on; nothing here ever turns verification off.
"""

from __future__ import annotations

import os
import socket
import ssl
from pathlib import Path

import trustme

from ipc_explorer.transports.base import ChannelClosed, TransportError

TLS_VERSION = "TLSv1.3"
_READ = 262144


def make_certificates(workdir: Path, host: str) -> dict[str, str]:
    """A CA and a certificate for ``host`` (an IP address SAN for an address) signed by it:
    the CA's certificate for the client, the key and chain for the server (mode 0600)."""
    ca = trustme.CA(organization_name="ipc-explorer throwaway CA")
    leaf = ca.issue_cert(host)
    ca_file = workdir / "ca.pem"
    server_file = workdir / "server-key-and-chain.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    fd = os.open(server_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as out:
        out.write(leaf.private_key_and_cert_chain_pem.bytes())
    return {"ca_file": str(ca_file), "server_pem": str(server_file)}


def server_context(server_pem: str) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_3
    context.load_cert_chain(server_pem)
    return context


def client_context(ca_file: str) -> ssl.SSLContext:
    """Verification on, hostname checked (PROTOCOL_TLS_CLIENT's defaults), only our CA."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.minimum_version = ssl.TLSVersion.TLSv1_3
    try:
        context.load_verify_locations(ca_file)
    except (OSError, ssl.SSLError) as exc:
        raise TransportError(f"cannot read the session's CA file {ca_file}: {exc}") from None
    return context


class TlsLink:
    """One TLS connection over memory BIOs; the caller moves bytes to and from the socket."""

    __slots__ = ("obj", "incoming", "outgoing")

    def __init__(
        self,
        context: ssl.SSLContext,
        server_side: bool,
        hostname: str | None = None,
        session: ssl.SSLSession | None = None,
    ):
        self.incoming = ssl.MemoryBIO()
        self.outgoing = ssl.MemoryBIO()
        self.obj = context.wrap_bio(
            self.incoming, self.outgoing, server_side=server_side, server_hostname=hostname,
            session=session,
        )  # fmt: skip

    def step_handshake(self) -> bool:
        """Advance the handshake with what has come in; True once it is complete."""
        try:
            self.obj.do_handshake()
        except ssl.SSLWantReadError:
            return False
        return True

    def take_output(self) -> bytes:
        """What TLS wants sent now (handshake messages, tickets, alerts)."""
        return self.outgoing.read()

    def encrypt(self, data: bytes | memoryview) -> bytes:
        """The records carrying ``data``, exactly as they go on the wire."""
        view = memoryview(data)
        while view:
            view = view[self.obj.write(view) :]
        return self.outgoing.read()

    def decrypt(self, raw: bytes) -> bytes:
        """The plaintext ``raw`` completes (maybe none: a partial record, a session ticket)."""
        if raw:
            self.incoming.write(raw)
        chunks = []
        while True:
            try:
                chunk = self.obj.read(_READ)
            except (ssl.SSLWantReadError, ssl.SSLZeroReturnError):
                break
            if not chunk:
                break
            chunks.append(chunk)
        return b"".join(chunks) if len(chunks) != 1 else chunks[0]


def client_handshake(sock: socket.socket, link: TlsLink, ca_file: str, host: str) -> int:
    """Run the client's side of the handshake on a blocking socket; the bytes it wrote."""
    written = 0
    while True:
        try:
            done = link.step_handshake()
        except ssl.SSLCertVerificationError as exc:
            raise TransportError(
                f"the HTTPS server's certificate was refused: {exc.verify_message} "
                f"(verified against the session's CA {ca_file}, for {host})"
            ) from None
        except ssl.SSLError as exc:
            raise TransportError(f"TLS handshake with the HTTPS server failed: {exc}") from None
        out = link.take_output()
        if out:
            sock.sendall(out)
            written += len(out)
        if done:
            return written
        raw = sock.recv(_READ)
        if not raw:
            raise ChannelClosed("EOF", "the HTTPS server closed the connection in the handshake")
        link.incoming.write(raw)
