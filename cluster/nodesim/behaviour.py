"""What a simulated pod does, read once from its ``sim.kubetrain.dev/*`` annotations.

The annotations are documented in the package docstring (``__init__.py``). A malformed value is
not fatal: the pod runs with the default and the problem is logged once, naming the annotation
and the fix, because a kubelet cannot reject a pod for a typo in an annotation either.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .options import NodeSimOptions

__all__ = ["PREFIX", "ContainerExit", "PodBehaviour", "behaviour_of"]

PREFIX = "sim.kubetrain.dev/"

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class ContainerExit:
    """How one main container's runs end."""

    name: str
    final_exit_code: int
    """Exit code of the last run (0: Completed, else Error)."""
    crash_exit_code: int
    """Exit code of the runs that crash before it (``restarts`` of them); never 0."""


@dataclass(frozen=True, slots=True, kw_only=True)
class PodBehaviour:
    """A pod's simulated behaviour. Invariant: durations >= 0, ``restarts`` >= 0."""

    run_seconds: float
    """Duration of a run that ends normally."""
    fail_after_seconds: float | None
    """Duration of a failing run (crashes, and a final run with a non-zero exit)."""
    restarts: int
    """Crashing runs before the final one (restarted in place unless restartPolicy Never)."""
    start_delay_seconds: float
    containers: tuple[ContainerExit, ...]
    init_exit_codes: tuple[tuple[str, int], ...]
    """(init container name, exit code) in order."""
    log_text: str | None
    """Literal text each main container logs per run, or None for generated lines."""
    log_lines: int
    """Generated lines per main container run when ``log_text`` is None."""

    def run_duration(self, exit_code: int) -> float:
        """How long a run ending with ``exit_code`` lasts."""
        if exit_code != 0 and self.fail_after_seconds is not None:
            return self.fail_after_seconds
        return self.run_seconds


def _number(annotations: Mapping[str, str], key: str, default: float, where: str) -> float:
    raw = annotations.get(PREFIX + key)
    if raw is None:
        return default
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if value < 0:
        log.warning(
            "pod %s: annotation %s%s=%r is not a number >= 0; using %s",
            where,
            PREFIX,
            key,
            raw,
            default,
        )
        return default
    return value


def _int(annotations: Mapping[str, str], key: str, default: int | None, where: str) -> int | None:
    raw = annotations.get(PREFIX + key)
    if raw is None:
        return default
    try:
        return int(str(raw).strip())
    except ValueError:
        log.warning(
            "pod %s: annotation %s%s=%r is not an integer; using %s",
            where,
            PREFIX,
            key,
            raw,
            default,
        )
        return default


def behaviour_of(pod: Mapping[str, Any], options: NodeSimOptions) -> PodBehaviour:
    """Read ``pod``'s annotations (see the package docstring) over ``options``' defaults."""
    meta = pod.get("metadata") or {}
    where = f"{meta.get('namespace', '')}/{meta.get('name', '')}"
    ann: Mapping[str, str] = meta.get("annotations") or {}
    spec = pod.get("spec") or {}
    fail_after = _number(ann, "fail-after-seconds", -1.0, where)
    fail_after_seconds = fail_after if fail_after >= 0 else None
    pod_exit = _int(ann, "exit-code", 0, where) or 0
    restarts = max(0, _int(ann, "restarts", 0, where) or 0)
    if pod_exit == 0 and fail_after_seconds is not None and restarts == 0:
        pod_exit = 1  # fail-after-seconds alone means "fails", with exit code 1
    containers = []
    for c in spec.get("containers") or []:
        name = str(c.get("name", ""))
        final = _int(ann, f"exit-code-{name}", pod_exit, where)
        final = pod_exit if final is None else final
        crash = final or pod_exit or 1
        containers.append(ContainerExit(name, final, crash))
    init = []
    for c in spec.get("initContainers") or []:
        name = str(c.get("name", ""))
        init.append((name, _int(ann, f"exit-code-{name}", 0, where) or 0))
    lines = _int(ann, "log-lines", options.default_log_lines, where)
    return PodBehaviour(
        run_seconds=_number(ann, "run-seconds", options.default_run_seconds, where),
        fail_after_seconds=fail_after_seconds,
        restarts=restarts,
        start_delay_seconds=_number(
            ann, "start-delay-seconds", options.default_start_delay_seconds, where
        ),
        containers=tuple(containers),
        init_exit_codes=tuple(init),
        log_text=ann.get(PREFIX + "log"),
        log_lines=max(0, lines if lines is not None else options.default_log_lines),
    )
