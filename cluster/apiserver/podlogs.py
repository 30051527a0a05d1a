"""Container logs of the embedded cluster's pods, written by the node simulator.

A real API server proxies ``pods/{name}/log`` to the kubelet; the embedded one keeps a buffer per
(namespace, pod, container) that the simulator fills, in process (``PodLogs.append``) or over
HTTP from another process: ``POST /apis/sim.kubetrain.dev/v1/namespaces/{ns}/pods/{name}/log
?container=c`` with a ``text/plain`` body (one or more lines). Buffers of deleted pods are
dropped by the server's store listener.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

__all__ = ["PodLogs"]

PodKey = tuple[str, str]  # (namespace, pod)


class PodLogs:
    """Log lines per container plus wake-ups for followers.

    Invariant: ``_lines[(ns, pod)][container]`` lists (timestamp, line-without-newline) in
    arrival order; ``max_lines_per_container`` bounds memory (oldest lines are dropped, and
    ``_dropped`` counts them so follower offsets stay valid).
    """

    def __init__(
        self, *, max_lines_per_container: int = 100_000, clock: Callable[[], float] = time.time
    ) -> None:
        self.max_lines_per_container = max_lines_per_container
        self.clock = clock
        self._lines: dict[PodKey, dict[str, list[tuple[float, str]]]] = {}
        self._dropped: dict[tuple[str, str, str], int] = {}
        self._wake: dict[PodKey, asyncio.Event] = {}

    def append(self, namespace: str, pod: str, container: str, text: str) -> int:
        """Add ``text`` (split into lines; a trailing newline is optional); return line count."""
        lines = text.splitlines()
        if not lines:
            return 0
        now = self.clock()
        buf = self._lines.setdefault((namespace, pod), {}).setdefault(container, [])
        buf.extend((now, line) for line in lines)
        excess = len(buf) - self.max_lines_per_container
        if excess > 0:
            del buf[:excess]
            key = (namespace, pod, container)
            self._dropped[key] = self._dropped.get(key, 0) + excess
        self.notify(namespace, pod)
        return len(lines)

    def containers(self, namespace: str, pod: str) -> list[str]:
        """Containers that have logged something."""
        return list(self._lines.get((namespace, pod), {}))

    def read(
        self,
        namespace: str,
        pod: str,
        container: str,
        *,
        start: int = 0,
        tail_lines: int | None = None,
        timestamps: bool = False,
    ) -> tuple[str, int]:
        """Text of the lines from absolute offset ``start`` (or the last ``tail_lines``).

        Returns (text, next_offset); pass ``next_offset`` back as ``start`` to follow.
        """
        buf = self._lines.get((namespace, pod), {}).get(container, [])
        dropped = self._dropped.get((namespace, pod, container), 0)
        first = max(0, start - dropped)
        if tail_lines is not None:
            first = max(first, len(buf) - max(0, tail_lines))
        chunk = buf[first:]
        if timestamps:
            text = "".join(f"{_stamp(ts)} {line}\n" for ts, line in chunk)
        else:
            text = "".join(f"{line}\n" for _, line in chunk)
        return text, dropped + len(buf)

    def notify(self, namespace: str, pod: str) -> None:
        """Wake followers of ``pod`` (new lines, or the pod changed)."""
        event = self._wake.pop((namespace, pod), None)
        if event is not None:
            event.set()

    async def wait(self, namespace: str, pod: str, timeout: float) -> None:
        """Wait for ``notify`` on ``pod`` or ``timeout`` seconds."""
        event = self._wake.get((namespace, pod))
        if event is None:
            event = self._wake[(namespace, pod)] = asyncio.Event()
        try:
            await asyncio.wait_for(event.wait(), timeout)
        except TimeoutError:
            pass

    def drop(self, namespace: str, pod: str) -> None:
        """Forget ``pod``'s logs (it was deleted) and wake its followers."""
        for container in self._lines.pop((namespace, pod), {}):
            self._dropped.pop((namespace, pod, container), None)
        self.notify(namespace, pod)


def _stamp(ts: float) -> str:
    whole = int(ts)
    frac = int((ts - whole) * 1_000_000_000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(whole)) + f".{frac:09d}Z"
