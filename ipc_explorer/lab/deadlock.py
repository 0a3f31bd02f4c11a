"""Deadlock detection from the board: a wait-for graph, its cycle, and when to believe it.

A sample of the board is not atomic and a timed wait may leave a cycle by itself, so a cycle
counts only when the same workers stay in it, none of them getting anywhere (no round done, no
back-off), for ``CYCLE_CONFIRM_S``.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from ipc_explorer.lab.stats import LockStats, WorkerView

#: A wait-for cycle is believed when it has been there, unchanged, this long.
CYCLE_CONFIRM_S = 0.3

#: worker index -> (index of the worker holding the lock it waits for, that lock's label)
WaitFor = dict[int, tuple[int, str]]


def wait_for_graph(
    workers: Iterable[WorkerView], lock_order: list[str], stats: dict[str, LockStats]
) -> WaitFor:
    """Edges worker -> (worker holding the lock it waits for, that lock)."""
    workers = list(workers)
    holder_of: dict[str, int] = {}
    for w in workers:
        for label in lock_order:
            if w.pid in stats[label].holders:
                holder_of[label] = w.index
    edges = {}
    for w in workers:
        for label in lock_order:
            if w.pid in stats[label].waiting and label in holder_of:
                if holder_of[label] != w.index:
                    edges[w.index] = (holder_of[label], label)
    return edges


def find_cycle(edges: WaitFor) -> list[tuple[int, str]]:
    """One cycle of the graph as (worker, lock it waits for) pairs; empty when there is none."""
    for start in edges:
        path: list[int] = []
        node = start
        while node in edges and node not in path:
            path.append(node)
            node = edges[node][0]
        if node in path:
            loop = path[path.index(node) :]
            return [(n, edges[n][1]) for n in loop]
    return []


class CycleWatch:
    """Fed one sample at a time; says when a cycle has persisted long enough to be a deadlock."""

    def __init__(self) -> None:
        self._key: tuple | None = None
        self._since: float | None = None

    def confirmed(
        self, edges: WaitFor, workers: list[WorkerView], now: float
    ) -> list[dict[str, Any]]:
        """The cycle, described edge by edge, once confirmed; empty until then."""
        cycle = find_cycle(edges)
        by_index = {w.index: w for w in workers}
        key = (
            tuple(sorted((n, by_index[n].done, by_index[n].events) for n, _ in cycle))
            if cycle
            else None
        )
        if key != self._key:
            self._key, self._since = key, now
            return []
        if key is None or self._since is None or now - self._since < CYCLE_CONFIRM_S:
            return []
        pid_of = {w.index: w.pid for w in workers}
        return [
            {
                "worker": n,
                "pid": pid_of[n],
                "waits_for_lock": label,
                "held_by_worker": edges[n][0],
                "held_by_pid": pid_of[edges[n][0]],
            }
            for n, label in cycle
        ]
