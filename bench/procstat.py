"""CPU seconds and memory of another process, read from ``/proc`` (Linux; no psutil).

The benchmark measures each system from outside, as the OS sees it: what the process cost,
whatever it thinks of itself. Every reader returns None when the process is gone or ``/proc`` is
not there, so a harness on another OS degrades to missing figures instead of failing.
"""

from __future__ import annotations

import os

__all__ = ["cpu_seconds", "open_fds", "peak_rss_bytes", "rss_bytes"]

_CLK_TCK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def cpu_seconds(pid: int) -> float | None:
    """User + system CPU seconds used so far by ``pid`` (``/proc/<pid>/stat`` utime + stime)."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as fh:
            raw = fh.read()
    except OSError:
        return None
    # Fields after "(comm)": state is field 3 of stat(5), utime 14 and stime 15.
    rest = raw[raw.rindex(")") + 2 :].split()
    return (int(rest[11]) + int(rest[12])) / _CLK_TCK


def _status_kib(pid: int, field: str) -> int | None:
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def peak_rss_bytes(pid: int) -> int | None:
    """Peak resident set size of ``pid`` so far (``VmHWM``), bytes."""
    kib = _status_kib(pid, "VmHWM")
    return None if kib is None else kib * 1024


def rss_bytes(pid: int) -> int | None:
    """Current resident set size of ``pid`` (``VmRSS``), bytes."""
    kib = _status_kib(pid, "VmRSS")
    return None if kib is None else kib * 1024


def open_fds(pid: int) -> int | None:
    """File descriptors ``pid`` has open now (entries of ``/proc/<pid>/fd``; readable for our own
    children)."""
    try:
        return len(os.listdir(f"/proc/{pid}/fd"))
    except OSError:
        return None
