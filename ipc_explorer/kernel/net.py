"""The kernel's socket tables (/proc/net/tcp, tcp6, udp, udp6), looked up by socket inode."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

TCP_STATES = {
    "01": "ESTABLISHED", "02": "SYN_SENT", "03": "SYN_RECV", "04": "FIN_WAIT1",
    "05": "FIN_WAIT2", "06": "TIME_WAIT", "07": "CLOSE", "08": "CLOSE_WAIT",
    "09": "LAST_ACK", "0A": "LISTEN", "0B": "CLOSING",
}  # fmt: skip


def socket_rows(protocol: str) -> Iterator[dict[str, Any]]:
    """Every row of /proc/net/{protocol} and {protocol}6, as names and numbers."""
    for table in (protocol, protocol + "6"):
        try:
            with open(f"/proc/net/{table}") as f:
                lines = f.read().splitlines()[1:]
        except FileNotFoundError:
            continue
        for line in lines:
            fields = line.split()
            if len(fields) < 10:
                continue
            tx, rx = (int(x, 16) for x in fields[4].split(":"))
            row: dict[str, Any] = {
                "table": table,
                "local": fields[1],
                "remote": fields[2],
                "state": TCP_STATES.get(fields[3], fields[3]),
                "tx_queue": tx,
                "rx_queue": rx,
                "inode": int(fields[9]),
            }
            if protocol == "udp" and len(fields) >= 13:
                row["drops"] = int(fields[12])
            yield row


def inet_socket(inode: int, protocol: str) -> dict[str, Any] | None:
    """The row of the socket with this inode in /proc/net/{protocol}[6], or None."""
    return next((row for row in socket_rows(protocol) if row["inode"] == inode), None)


def peer_row(row: dict[str, Any]) -> dict[str, Any] | None:
    """The other end of a connected TCP socket on this machine: the row whose local address
    is this one's remote address (loopback connections have both ends here)."""
    for other in socket_rows("tcp"):
        if (
            other["table"] == row["table"]
            and other["local"] == row["remote"]
            and other["remote"] == row["local"]
        ):
            return other
    return None
