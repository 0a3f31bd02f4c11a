"""What a run did, as one dict: the figures ``run --json`` prints and the tests check."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ipc_explorer.session.config import SessionConfig

if TYPE_CHECKING:
    from ipc_explorer.session.session import Session

#: What a sender that opens connections reports of them (the HTTP family): the wire bytes split
#: into headers, body and TLS overhead (adding up to ``wire_bytes``), connections opened, TLS
#: handshakes (``resumptions`` of them resumed a session) and the TLS version.
CONNECTION_FIGURES = ("wire_split", "connections", "handshakes", "resumptions", "tls_version")


def summarize(session: Session) -> dict[str, Any]:
    """Counts, integrity, throughput, latency and stages of ``session`` so far."""
    cfg = session.config
    st = session.stats
    snd, rcv = st.sender, st.receiver
    pingpong = cfg.pattern == "ping-pong"
    sent = snd.count("sent")
    unique = rcv.count("unique")
    t_first = snd.count("t_first")
    # On another host the receiver's clock is not ours: its stamps, read on the sender's
    # clock, are less the offset measured at start (zero on one host).
    rcv_last = rcv.count("t_last")
    rcv_last = rcv_last - session.clock_offset_ns if rcv_last else 0
    t_last = max(rcv_last, snd.count("t_last") if pingpong else 0)
    elapsed = (t_last - t_first) / 1e9 if t_first and t_last > t_first else 0.0
    payload_bytes = snd.count("payload_bytes")
    # A message corrupted on the way out comes back corrupted too: in ping-pong the sender's
    # count covers both directions.
    corrupt = snd.count("echo_corrupt") if pingpong else rcv.count("corrupt")
    integrity = {
        "lost": max(sent - unique, 0),
        "duplicated": rcv.count("duplicated"),
        "reordered": rcv.count("reordered"),
        "corrupt": corrupt,
    }
    reliable = session.transport_cls.reliable
    # At-least-once delivery: a redelivered message that the killed receiver had processed
    # comes twice, by design; more duplicates than redeliveries would be a fault.
    redelivered = int(rcv.live.get("redelivered") or 0)
    faults = dict(integrity, duplicated=max(integrity["duplicated"] - redelivered, 0))
    ok = not session.problems and (not reliable or not any(faults.values()))
    return {
        "mechanism": cfg.mechanism,
        "format": cfg.format,
        "pattern": cfg.pattern,
        "count": cfg.count,
        "size": cfg.size,
        "rate": cfg.rate,
        "reliable": reliable,
        "sent": sent,
        "received": unique,
        **integrity,
        "timeouts": snd.count("timeouts"),
        "kernel_drops": rcv.live.get("kernel_drops"),
        "wire_bytes": snd.count("wire_bytes"),
        "payload_bytes": payload_bytes,
        **_connection_figures(session, snd.live, snd.count("wire_bytes"), payload_bytes),
        "elapsed_s": round(elapsed, 6),
        "msgs_per_s": round(unique / elapsed, 1) if elapsed else 0.0,
        "mb_per_s": round(payload_bytes / elapsed / 1e6, 3) if elapsed else 0.0,
        "latency_kind": "round trip" if pingpong else "one way",
        "latency_us": st.percentiles_us("rtt" if pingpong else "one_way"),
        "stages_us": st.stage_medians_us(pingpong),
        "setup_ms": round(max(snd.count("setup_ns"), rcv.count("setup_ns")) / 1e6, 3),
        "channel": rcv.describe or snd.describe,
        **(
            {"broker": (rcv.describe or snd.describe)["broker"], "redelivered": redelivered}
            if "broker" in (rcv.describe or snd.describe)
            else {}
        ),
        "receivers": session.receivers,
        **_hosts(session),
        "placement": _placement(cfg, session.cpus),
        "ok": ok,
        "problems": list(dict.fromkeys(session.problems)),
    }


def _connection_figures(
    session: Session, live: dict[str, Any], wire_bytes: int, payload_bytes: int
) -> dict[str, Any]:
    """What the sender counted of its connections; the wire split the totals tell otherwise."""
    figures = {name: live[name] for name in CONNECTION_FIGURES if name in live}
    if "wire_split" not in figures:
        split = session.transport_cls.wire_split(wire_bytes, payload_bytes)
        if split is not None:
            figures["wire_split"] = split
    return figures


def _placement(cfg: SessionConfig, cpus: int | None) -> str:
    nice = f", children at nice {cfg.nice}" if cfg.nice else ""
    if cfg.cpus:
        pins = f"sender on CPU {cfg.cpus.get('sender')}, receiver on CPU {cfg.cpus.get('receiver')}"
        return pins + nice
    return f"unpinned (the OS places both on {cpus} CPUs){nice}"


def _hosts(session: Session) -> dict[str, Any]:
    """Where each side ran; across hosts, the clocks' offset and its error bound too."""
    here = session.host
    link = session.remote
    if link is None:
        return {"hosts": {"sender": here, "receiver": here}}
    return {
        "hosts": {
            "sender": f"{here} (local)",
            "receiver": f"{link.host} at {link.address} (remote agent)",
        },
        "clock": {
            "offset_us": round(link.clock["offset_ns"] / 1000, 1),
            "error_us": round(link.clock["error_ns"] / 1000, 1),
            "note": "one-way figures read the sender's stamps on the receiver's clock with "
            "this offset (± the error); round trips are exact",
        },
    }
