"""Test doubles shared by the suites: one copy each, importable as ``fakes`` (``tests/`` is on the
path through its conftest). Each implements only the protocol its users need."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from kubetrain.engine.queue import NORMAL_PRIORITY


class RecordingQueue:
    """A ``KeyQueue`` that records every add with its priority."""

    def __init__(self) -> None:
        self.added: list[tuple[str, int]] = []

    def add(self, key: str, *, priority: int = NORMAL_PRIORITY) -> None:
        self.added.append((key, priority))

    @property
    def keys(self) -> list[str]:
        return [key for key, _ in self.added]


class RecordingRecorder:
    """An ``EventSink`` that keeps ``(type, reason, message)`` of every event."""

    def __init__(self) -> None:
        self.events: list[tuple[str, str, str]] = []

    def event(self, obj: Mapping[str, Any], type: str, reason: str, message: str, **_: Any) -> None:
        self.events.append((type, reason, message))
