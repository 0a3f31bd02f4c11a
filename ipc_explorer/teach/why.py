"""Why is a child blocked? The kernel's own account, put in one sentence.

From /proc/PID/stat (state), /proc/PID/syscall (which call, on which descriptor or address),
/proc/PID/wchan, the descriptor borrowed with pidfd_getfd (FIONREAD, pipe capacity, socket
queues), /proc/PID/maps (which semaphore a futex belongs to), mq_getattr and sem_getvalue by
name. What a process says of itself is kept apart and labelled as such.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from typing import Any

import posix_ipc

from ipc_explorer.explain import why as words
from ipc_explorer.kernel import procfs
from ipc_explorer.kernel.descriptors import descriptor_facts
from ipc_explorer.kernel.facts import Facts
from ipc_explorer.kernel.syscalls import ON_A_DESCRIPTOR, READS, WRITES, manual_name
from ipc_explorer.session import Session

CHILD_MODULE = "ipc_explorer.children"
BYTE_STREAMS = {"pipe", "fifo", "unix-stream", "tcp", "http"}


class NotAChild(Exception):
    """The pid is not a child process of an ipc-explorer session (or does not exist)."""


@dataclass
class Child:
    """A child of a session as /proc shows it: its pid, role and the session's plan."""

    pid: int
    role: str
    mechanism: str = ""
    plan: dict[str, Any] = field(default_factory=dict)


class CannotSee(Exception):
    """The kernel will not show this process's state to us (no right to trace it)."""


def identify(pid: int) -> Child:
    """The child behind ``pid``, from its command line; NotAChild when it is not one."""
    try:
        if procfs.state(pid) == "Z":
            raise NotAChild(f"process {pid} has exited (a zombie its parent has not reaped)")
        group = procfs.thread_group(pid)
        if group != pid:
            raise NotAChild(f"{pid} is a thread of process {group}, not a process")
        argv = procfs.command_line(pid)
    except procfs.ProcessGone:
        raise NotAChild(f"no process {pid}") from None
    if CHILD_MODULE not in argv or "--role" not in argv[:-1]:
        raise NotAChild(f"process {pid} is not a child of an ipc-explorer session")
    role = argv[argv.index("--role") + 1]
    plan: dict[str, Any] = {}
    if "--config" in argv:
        try:
            plan = json.loads(argv[argv.index("--config") + 1]).get("plan", {})
        except (ValueError, IndexError, AttributeError):
            plan = {}
    return Child(pid, role, plan.get("mechanism", ""), plan)


def peer_of(child: Child) -> Child | None:
    """The other side of the same session: the sibling with the other role."""
    if child.role not in ("sender", "receiver"):
        return None
    other = "receiver" if child.role == "sender" else "sender"
    parent = procfs.parent_pid(child.pid)
    for name in _pids():
        if name == child.pid:
            continue
        try:
            if procfs.parent_pid(name) != parent:
                continue
            candidate = identify(name)
        except (NotAChild, procfs.ProcessGone):
            continue
        if candidate.role == other and candidate.plan.get("workdir") == child.plan.get("workdir"):
            return candidate
    return None


def _pids() -> list[int]:
    return [int(name) for name in os.listdir("/proc") if name.isdigit()]


@dataclass
class Diagnosis:
    pid: int
    role: str
    mechanism: str
    state: str  # running, blocked, stopped, sleeping
    sentence: str
    facts: Facts
    self_reported: dict[str, Any] = field(default_factory=dict)
    peer: dict[str, Any] = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        out = {
            "pid": self.pid,
            "role": self.role,
            "mechanism": self.mechanism,
            "state": self.state,
            "sentence": self.sentence,
            "facts": self.facts.values(),
            "sources": self.facts.sources(),
        }
        if self.peer:
            out["peer"] = self.peer
        if self.self_reported:
            out["self_reported"] = self.self_reported
        return out


def diagnosis_from_json(data: dict[str, Any]) -> Diagnosis:
    """A Diagnosis as ``as_json`` wrote it (a recording)."""
    return Diagnosis(
        pid=data["pid"],
        role=data["role"],
        mechanism=data["mechanism"],
        state=data["state"],
        sentence=data["sentence"],
        facts=Facts.from_json(data["facts"], data["sources"]),
        self_reported=data.get("self_reported", {}),
        peer=data.get("peer", {}),
    )


def process_facts(pid: int) -> Facts:
    """State, system call (with its descriptor or address) and wait channel."""
    facts = Facts()
    letter = procfs.state(pid)
    facts.add("process_state", f"{letter} ({procfs.STATES.get(letter, '?')})", f"/proc/{pid}/stat")
    try:
        call = procfs.system_call(pid)
    except PermissionError:
        raise CannotSee(
            f"cannot read process {pid}'s system call: no right to trace it (another user's "
            "process, or Yama's ptrace_scope); run as that user or root, or press w in the app "
            "that started it"
        ) from None
    name = call.name if call else "none (running in user space)"
    facts.add("syscall", name, f"/proc/{pid}/syscall")
    if call is not None:
        if call.name in ON_A_DESCRIPTOR:
            facts.add("syscall_fd", call.args[0], f"/proc/{pid}/syscall, first argument")
        elif call.name.startswith("futex"):
            facts.add("futex_address", hex(call.args[0]), f"/proc/{pid}/syscall, first argument")
        elif call.name in ("semop", "semtimedop"):
            facts.add("semid", call.args[0], f"/proc/{pid}/syscall, first argument")
    wchan = procfs.wait_channel(pid)
    if wchan:
        facts.add("wchan", wchan, f"/proc/{pid}/wchan")
    return facts


def diagnose(
    pid: int,
    child: Child | None = None,
    peer: Child | None = None,
    said: dict[str, Any] | None = None,
    peer_said: dict[str, Any] | None = None,
) -> Diagnosis:
    """Why ``pid`` does not move (or that it does). ``said`` and ``peer_said`` are what the two
    processes report of themselves (a front end has them), shown apart from the kernel's facts."""
    child = child or identify(pid)
    if peer is None:
        peer = peer_of(child)
    facts = process_facts(pid)
    kind, figures = _classify(pid, facts)
    who_words = words.SUBJECTS["stream" if child.mechanism in BYTE_STREAMS else "other"]
    if child.role == "contender":
        who_words = words.SUBJECTS["contender"]
    figures.update(who=who_words.get(child.role, f"the {child.role}"))
    figures["peer"] = _peer_clause(peer, who_words, peer_said) if peer else ""
    figures["said"] = f"; it says it is {_doing(said)}" if said else ""
    try:
        sentence = words.SENTENCES[kind].format(**figures)
    except (KeyError, ValueError):
        sentence = words.SENTENCES["sleeping_user"].format(
            who=figures["who"],
            state=facts.get("process_state"),
            peer=figures["peer"],
            said=figures["said"],
        )
    state = {"running": "running", "stopped": "stopped", "sleeping_user": "sleeping"}.get(
        kind, "blocked"
    )
    return Diagnosis(
        pid=pid,
        role=child.role,
        mechanism=child.mechanism,
        state=state,
        sentence=sentence,
        facts=facts,
        self_reported=dict(said or {}),
        peer={"pid": peer.pid, "role": peer.role} if peer else {},
    )


def _classify(pid: int, facts: Facts) -> tuple[str, dict[str, Any]]:
    """Which sentence fits, and the figures it needs (added to ``facts`` as they are read)."""
    letter = str(facts.get("process_state", "?"))[0]
    call = str(facts.get("syscall", ""))
    figures: dict[str, Any] = {"call": manual_name(call), "state": letter}
    if letter == "R":
        return "running", figures
    if letter in "tT":
        return "stopped", figures
    if "syscall_fd" in facts:
        fd = int(facts.get("syscall_fd"))
        if call.startswith("mq_"):
            return _queue(pid, fd, call, facts, figures)
        facts.update(descriptor_facts(pid, fd))
        figures.update(facts.values())
        figures["kind"] = facts.get("kind", "descriptor")
        queued = facts.get("queued_bytes", facts.get("next_datagram_bytes"))
        if queued is None:
            figures["wchan"] = facts.get("wchan", "?")
            return "sleeping", figures
        figures["queued_bytes"] = queued
        if call in WRITES and "unread_memory_bytes" in facts:  # a Unix socket
            buffer_full = facts.get("unread_memory_bytes") >= facts.get("send_buffer_bytes", 0)
            if "max_dgram_qlen" in facts and not buffer_full:  # the reader's queue length
                return "write_dgram_queue", figures
            return "write_unix", figures
        if call in WRITES and "unsent_bytes" in facts:  # TCP: its send queue
            peer_rx = facts.get("peer_rx_queue_bytes")
            figures["peer_queue"] = (
                f", {peer_rx:,} wait in the other side's receive queue" if peer_rx else ""
            )
            return "write_socket", figures
        if call in WRITES:
            capacity = facts.get("capacity_bytes", facts.get("receive_buffer_bytes"))
            figures["capacity_bytes"] = capacity
            full = capacity is not None and queued >= capacity
            return ("write_full" if full else "write"), figures
        if call in READS:
            return ("read_empty" if not queued else "read"), figures
    if "futex_address" in facts:
        mapping = procfs.mapping_of(pid, int(str(facts.get("futex_address")), 16))
        if "/sem." in mapping:
            name = "/" + mapping.rsplit("/sem.", 1)[1].split()[0]
            facts.add("semaphore", name, f"/proc/{pid}/maps: the futex lies in {mapping}")
            figures["semaphore"] = name.rsplit("-", 1)[-1]
            try:
                sem = posix_ipc.Semaphore(name)
                figures["semaphore_value"] = sem.value
                sem.close()
                facts.add("semaphore_value", figures["semaphore_value"], f"sem_getvalue {name}")
            except posix_ipc.Error:
                figures["semaphore_value"] = "?"
            return "sem", figures
        facts.add(
            "futex_in", mapping or "anonymous memory", f"/proc/{pid}/maps at the futex address"
        )
        return "own_futex", figures
    if "semid" in facts:
        figures["semid"] = facts.get("semid")
        return "sysv", figures
    if call.startswith("none"):
        return "sleeping_user", figures
    figures["wchan"] = facts.get("wchan", "?")
    return "sleeping", figures


def _queue(
    pid: int, fd: int, call: str, facts: Facts, figures: dict[str, Any]
) -> tuple[str, dict[str, Any]]:
    name = procfs.fd_target(pid, fd)
    facts.add("queue", name, f"readlink /proc/{pid}/fd/{fd}")
    try:
        queue = posix_ipc.MessageQueue(name)
    except posix_ipc.Error:
        return "sleeping", {**figures, "wchan": facts.get("wchan", "?")}
    try:
        source = f"mq_getattr on {name}"
        facts.add("queue_depth", queue.current_messages, source)
        facts.add("queue_max_messages", queue.max_messages, source)
    finally:
        queue.close()
    figures.update(facts.values())
    return ("mq_send" if "send" in call else "mq_receive"), figures


def _peer_clause(peer: Child, who_words: dict[str, str], said: dict[str, Any] | None) -> str:
    peer_who = who_words.get(peer.role, f"the {peer.role}")
    if said and (said.get("state") in ("paused", "stopped") or "held" in str(said.get("op"))):
        return words.PEER["said"].format(peer_who=peer_who, peer_said=_doing(said))
    try:
        facts = process_facts(peer.pid)
        letter = str(facts.get("process_state", "?"))[0]
        call = str(facts.get("syscall", ""))
        if letter in "tT":
            return words.PEER["stopped"].format(peer_who=peer_who)
        if letter == "R":
            return words.PEER["running"].format(peer_who=peer_who)
        if call.startswith("futex") and "futex_address" in facts:
            mapping = procfs.mapping_of(peer.pid, int(str(facts.get("futex_address")), 16))
            if "/sem." not in mapping:
                return words.PEER["own_futex"].format(peer_who=peer_who)
    except procfs.ProcessGone:
        return words.PEER["gone"].format(peer_who=peer_who)
    except CannotSee:
        return ""
    return words.PEER["blocked"].format(peer_who=peer_who, peer_call=manual_name(call))


def _doing(said: dict[str, Any]) -> str:
    op = str(said.get("op") or "")
    if op.startswith("held"):
        return f"{op} (step mode)"
    return str(said.get("state") or op or "?")


def session_diagnoses(session: Session) -> list[Diagnosis]:
    """Both children of a running session, each with its own report beside the kernel's."""
    plan = session.plan.to_json() if session.plan is not None else {}
    mechanism = session.config.mechanism
    children = {}
    said = {}
    for side in ("sender", "receiver"):
        state = session.stats.side(side)
        if state.pid is not None and session.alive(side):
            children[side] = Child(state.pid, side, mechanism, plan)
            said[side] = {"state": state.state, "op": state.op}
    found = []
    for side, child in children.items():
        other = "receiver" if side == "sender" else "sender"
        try:
            found.append(
                diagnose(
                    child.pid,
                    child=child,
                    peer=children.get(other),
                    said=said[side],
                    peer_said=said.get(other),
                )
            )
        except procfs.ProcessGone:
            continue
    return found
