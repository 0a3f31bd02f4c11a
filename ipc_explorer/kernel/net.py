"""The kernel's socket tables (/proc/net/tcp, tcp6, udp, udp6), looked up by socket inode."""

from __future__ import annotations

from typing import Any

TCP_STATES = {
    "01": "ESTABLISHED", "02": "SYN_SENT", "03": "SYN_RECV", "04": "FIN_WAIT1",
    "05": "FIN_WAIT2", "06": "TIME_WAIT", "07": "CLOSE", "08": "CLOSE_WAIT",
    "09": "LAST_ACK", "0A": "LISTEN", "0B": "CLOSING",
}  # fmt: skip


def inet_socket(inode: int, protocol: str) -> dict[str, Any] | None:
    """The row of the socket with this inode in /proc/net/{protocol}[6], or None."""
    for table in (protocol, protocol + "6"):
        try:
            with open(f"/proc/net/{table}") as f:
                lines = f.read().splitlines()[1:]
        except FileNotFoundError:
            continue
        for line in lines:
            fields = line.split()
            if len(fields) < 10 or int(fields[9]) != inode:
                continue
            tx, rx = (int(x, 16) for x in fields[4].split(":"))
            row: dict[str, Any] = {
                "table": table,
                "local": fields[1],
                "remote": fields[2],
                "state": TCP_STATES.get(fields[3], fields[3]),
                "tx_queue": tx,
                "rx_queue": rx,
            }
            if protocol == "udp" and len(fields) >= 13:
                row["drops"] = int(fields[12])
            return row
    return None


def peer_row(row: dict[str, Any]) -> dict[str, Any] | None:
    """The other end of a connected TCP socket on this machine: the row whose local address
    is this one's remote address (loopback connections have both ends here)."""
    try:
        with open(f"/proc/net/{row['table']}") as f:
            lines = f.read().splitlines()[1:]
    except FileNotFoundError:
        return None
    for line in lines:
        fields = line.split()
        if len(fields) >= 10 and fields[1] == row["remote"] and fields[2] == row["local"]:
            tx, rx = (int(x, 16) for x in fields[4].split(":"))
            return {"tx_queue": tx, "rx_queue": rx, "inode": int(fields[9])}
    return None
