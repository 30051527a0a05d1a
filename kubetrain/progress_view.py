"""How ``kubetrain up`` shows job progress: a rich live table on a terminal, one plain line per
change otherwise (CI logs, pipes), and a summary table at the end.

Views only read ``JobTracker`` rows; they never talk to the API server.
"""

from __future__ import annotations

import asyncio
from types import TracebackType

from rich.console import Console
from rich.live import Live
from rich.table import Table
from rich.text import Text

from .progress import POD_PHASES, JobKey, JobRow, JobTracker

__all__ = ["LineView", "LiveView", "ProgressView", "condition_style", "summary_table"]

_STYLES = {
    "Succeeded": "bold green",
    "Failed": "bold red",
    "Rejected": "bold red",
    "Deleted": "red",
    "Running": "cyan",
    "Restarting": "yellow",
    "Suspended": "magenta",
    "Created": "yellow",
}


def condition_style(condition: str) -> str:
    return _STYLES.get(condition, "dim")


def _seconds(value: float) -> str:
    return f"{value:.1f}s"


def _job_name(row: JobRow) -> str:
    return row.name if row.namespace == "default" else f"{row.namespace}/{row.name}"


def progress_table(tracker: JobTracker) -> Table:
    """The live table: one row per expected job."""
    rows = tracker.expected
    finished = sum(1 for r in rows if r.finished)
    table = Table(title=f"kubetrain up: {finished}/{len(rows)} jobs finished", title_justify="left")
    table.add_column("JOB")
    table.add_column("KIND")
    for phase in POD_PHASES:
        table.add_column(phase.upper(), justify="right")
    table.add_column("CONDITION")
    table.add_column("ELAPSED", justify="right")
    for row in rows:
        table.add_row(
            _job_name(row),
            row.kind,
            *(str(row.pods[phase]) for phase in POD_PHASES),
            Text(row.condition or "submitted", style=condition_style(row.condition)),
            _seconds(row.elapsed()),
        )
    return table


def summary_table(tracker: JobTracker) -> Table:
    """The final table: condition, duration and pods of each expected job (and the message of a
    job that did not succeed)."""
    rows = tracker.expected
    ok = sum(1 for r in rows if r.succeeded)
    table = Table(title=f"Summary: {ok}/{len(rows)} jobs succeeded", title_justify="left")
    table.add_column("JOB")
    table.add_column("KIND")
    table.add_column("CONDITION")
    table.add_column("DURATION", justify="right")
    table.add_column("PODS")
    show_message = any(not r.succeeded and r.message for r in rows)
    if show_message:
        table.add_column("MESSAGE", overflow="fold")
    for row in rows:
        pods = ", ".join(f"{n} {phase.lower()}" for phase in POD_PHASES if (n := row.pods[phase]))
        cells: list[str | Text] = [
            _job_name(row),
            row.kind,
            Text(row.condition or "-", style=condition_style(row.condition)),
            _seconds(row.elapsed()),
            pods or "-",
        ]
        if show_message:
            cells.append("" if row.succeeded else row.message)
        table.add_row(*cells)
    return table


class ProgressView:
    """Shows progress while a ``with`` block runs; subclasses choose how."""

    def __enter__(self) -> ProgressView:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        return None


class LiveView(ProgressView):
    """A rich live table, redrawn ``refresh_per_second`` times a second (elapsed times tick) from
    the tracker's rows. Output written to stdout/stderr meanwhile (logs) appears above it."""

    def __init__(
        self, tracker: JobTracker, console: Console, *, refresh_per_second: float = 4
    ) -> None:
        self._live = Live(
            console=console,
            refresh_per_second=refresh_per_second,
            get_renderable=lambda: progress_table(tracker),
        )

    def __enter__(self) -> LiveView:
        self._live.start(refresh=True)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._live.stop()  # leaves the last table on screen


class LineView(ProgressView):
    """One line per visible change of a job (condition or pod counts), for logs and pipes::

        3.2s PyTorchJob pytorch-simple: Running (pending 0 running 3 succeeded 0 failed 0)

    Changes are gathered for ``coalesce_seconds`` so that a burst (pods of a job starting one by
    one) prints one line per job with its latest state; a change of condition is never lost, only
    intermediate pod counts are. Must be entered on the event loop.
    """

    def __init__(
        self, tracker: JobTracker, console: Console, *, coalesce_seconds: float = 0.2
    ) -> None:
        self._tracker = tracker
        self._console = console
        self._coalesce = coalesce_seconds
        self._last: dict[JobKey, str] = {}
        """The last line printed per job (without its time)."""
        self._last_condition: dict[JobKey, str] = {}
        """The condition of that line."""
        self._dirty: dict[JobKey, JobRow] = {}
        """Jobs changed since the last flush, in order of first change."""
        self._timer: asyncio.TimerHandle | None = None
        self._active = False
        tracker.add_listener(self._on_change)

    def __enter__(self) -> LineView:
        self._active = True
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.flush()
        self._active = False

    def _on_change(self, row: JobRow) -> None:
        if not self._active or row.key not in self._tracker.expected_keys:
            return
        self._dirty.setdefault(row.key, row)
        if row.condition != self._last_condition.get(row.key) or self._coalesce <= 0:
            self.flush()  # a new condition is reported at once
        elif self._timer is None:
            self._timer = asyncio.get_running_loop().call_later(self._coalesce, self.flush)

    def flush(self) -> None:
        """Print the pending changes now."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        dirty, self._dirty = self._dirty, {}
        for key, row in dirty.items():
            line = self.line(row)
            if self._last.get(key) == line:
                continue
            self._last[key] = line
            self._last_condition[key] = row.condition
            self._console.print(
                f"{_seconds(row.elapsed())} {line}", markup=False, highlight=False, soft_wrap=True
            )

    @staticmethod
    def line(row: JobRow) -> str:
        text = f"{row.kind} {_job_name(row)}: {row.condition or 'submitted'} ({row.pod_summary()})"
        if row.finished and not row.succeeded and row.message:
            text += f": {row.message}"
        return text
