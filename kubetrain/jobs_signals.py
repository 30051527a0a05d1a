"""SIGINT and SIGTERM during a ``kubetrain jobs`` command: a cancellation, not a traceback.

Why: a pipeline step is stopped with SIGTERM, a person stops with Ctrl-C; either must end the
command with the shell's code for the signal (130, 143) after the command had its say (``jobs
submit --delete-on-cancel`` deletes the job it created, without it says the job is left running).
The first signal cancels the command's task, which runs its cleanup; a second one cancels the
cleanup too.
"""

from __future__ import annotations

import asyncio
import signal
from types import TracebackType

__all__ = ["Interrupts"]

_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class Interrupts:
    """Within ``with Interrupts() as stop:`` in a task, SIGINT/SIGTERM cancel that task;
    ``stop.received`` is the signal, ``stop.exit_code`` 128 plus its number."""

    def __init__(self) -> None:
        self.received: signal.Signals | None = None
        self._task: asyncio.Task[object] | None = None

    @property
    def exit_code(self) -> int:
        return 128 + int(self.received) if self.received is not None else 0

    @property
    def name(self) -> str:
        return self.received.name if self.received is not None else ""

    def __enter__(self) -> Interrupts:
        self._task = asyncio.current_task()
        loop = asyncio.get_running_loop()
        for sig in _SIGNALS:
            loop.add_signal_handler(sig, self._on_signal, sig)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        loop = asyncio.get_running_loop()
        for sig in _SIGNALS:
            loop.remove_signal_handler(sig)

    def _on_signal(self, sig: signal.Signals) -> None:
        if self.received is None:
            self.received = sig
        if self._task is not None:
            self._task.cancel()
