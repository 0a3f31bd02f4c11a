"""The lessons, one module each, in teaching order: the kernel's buffers first, then
synchronisation, then formats."""

from __future__ import annotations

from ipc_explorer.teach.lessons.base import Check, Lesson
from ipc_explorer.teach.lessons.deadlock import Deadlock
from ipc_explorer.teach.lessons.formats import Formats
from ipc_explorer.teach.lessons.full_pipe import FullPipe
from ipc_explorer.teach.lessons.lost_updates import LostUpdates
from ipc_explorer.teach.lessons.nagle import Nagle
from ipc_explorer.teach.lessons.ring_buffer import RingBuffer
from ipc_explorer.teach.lessons.udp_drops import UdpDrops

LESSONS: dict[str, type[Lesson]] = {
    cls.name: cls for cls in (FullPipe, UdpDrops, Nagle, RingBuffer, LostUpdates, Deadlock, Formats)
}


class UnknownLesson(ValueError):
    """No lesson of that name; the text lists the names."""


def get_lesson(name: str) -> Lesson:
    if name not in LESSONS:
        raise UnknownLesson(f"unknown lesson {name!r}; lessons: {', '.join(LESSONS)}")
    return LESSONS[name]()


__all__ = ["LESSONS", "Check", "Lesson", "UnknownLesson", "get_lesson"]
