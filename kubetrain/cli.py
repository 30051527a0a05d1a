"""The ``kubetrain`` command line: one entry point, one subcommand per thing a user runs.

Subcommands parse flags into options objects and hand over to the room that does the work; no
logic lives here beyond wiring, signals and what is printed for the user.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from collections.abc import Callable, Sequence

from kubetrain import __version__
from kubetrain.engine.config import ConfigError


def _event_loop_runner() -> asyncio.Runner:
    """uvloop when it is installed (it is a dependency on Linux), asyncio's loop otherwise."""
    try:
        import uvloop

        return asyncio.Runner(loop_factory=uvloop.new_event_loop)
    except ImportError:  # pragma: no cover - non-Linux
        return asyncio.Runner()


def _configure_cluster(p: argparse.ArgumentParser) -> None:
    from kubetrain.cluster_command import add_cluster_flags, run_cluster

    add_cluster_flags(p)
    p.set_defaults(main=run_cluster)


def _configure_operator(p: argparse.ArgumentParser) -> None:
    from kubetrain.operator import add_operator_flags, run_operator

    add_operator_flags(p)
    p.set_defaults(main=run_operator)


def _configure_bench(p: argparse.ArgumentParser) -> None:
    from kubetrain.bench.cli import add_bench_flags, run_bench

    add_bench_flags(p)
    p.set_defaults(main=run_bench)


def _configure_up(p: argparse.ArgumentParser) -> None:
    from kubetrain.up import add_up_flags, run_up

    add_up_flags(p)
    p.set_defaults(main=run_up)


def _configure_jobs(p: argparse.ArgumentParser) -> None:
    from kubetrain.jobs_cli import add_jobs_flags

    add_jobs_flags(p)


def _configure_dashboard(p: argparse.ArgumentParser) -> None:
    from kubetrain.dashboard_command import add_dashboard_flags

    add_dashboard_flags(p)


#: Subcommand -> (help, what adds its flags). Only the chosen one's flags are built: each pulls
#: in its room (the operator need not import the embedded cluster, the bench or rich), which is
#: CPU a process pays at every start.
COMMANDS: dict[str, tuple[str, Callable[[argparse.ArgumentParser], None]]] = {
    "cluster": ("run the embedded cluster (API server + simulated nodes)", _configure_cluster),
    "operator": ("run the job controllers against a cluster", _configure_operator),
    "bench": ("run a load scenario side by side with the baselines", _configure_bench),
    "up": ("embedded cluster + operator + example jobs, with live progress", _configure_up),
    "jobs": (
        "training jobs of every kind: list, describe, logs, submit, wait, delete, suspend",
        _configure_jobs,
    ),
    "dashboard": ("the job dashboard in the browser, with your kubeconfig", _configure_dashboard),
}


def _chosen_command(argv: Sequence[str]) -> str | None:
    """The subcommand named in ``argv``: the first word that is not an option (the top-level
    options take no values)."""
    for arg in argv:
        if not arg.startswith("-"):
            return arg if arg in COMMANDS else None
    return None


def build_parser(argv: Sequence[str] | None = None) -> argparse.ArgumentParser:
    """The parser for ``argv`` (default ``sys.argv[1:]``): every subcommand is listed, only the
    chosen one gets its flags."""
    chosen = _chosen_command(sys.argv[1:] if argv is None else argv)
    parser = argparse.ArgumentParser(
        prog="kubetrain",
        description="Distributed training jobs on Kubernetes (Kubeflow Training v1 API).",
    )
    parser.add_argument("--version", action="version", version=f"kubetrain {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, (help_text, configure) in COMMANDS.items():
        p = sub.add_parser(name, help=help_text)
        if name == chosen:
            configure(p)
    return parser


#: Subcommands whose exit codes give 2 a meaning of their own, and answer a usage error with this
#: code instead (``kubetrain jobs``: 2 is "timed out", 3 "invalid input").
USAGE_ERROR_CODES: dict[str, int] = {"jobs": 3}


def _parse(argv: Sequence[str] | None) -> argparse.Namespace:
    """``build_parser(argv).parse_args(argv)``; a usage error exits 2, or the chosen
    subcommand's ``USAGE_ERROR_CODES`` code (also for flags the top-level parser refuses)."""
    try:
        return build_parser(argv).parse_args(argv)
    except SystemExit as e:
        chosen = _chosen_command(sys.argv[1:] if argv is None else argv)
        if e.code == 2 and chosen in USAGE_ERROR_CODES:
            raise SystemExit(USAGE_ERROR_CODES[chosen]) from None
        raise


def main(argv: Sequence[str] | None = None) -> int:
    # GC for a large, long-lived heap (gctuning.py); KUBETRAIN_GC_TUNING=0 turns it off.
    if os.environ.get("KUBETRAIN_GC_TUNING", "1") != "0":
        from kubetrain import gctuning

        gctuning.install()
    # Ctrl-C can land anywhere: while subcommands import their modules, before the event loop
    # installs its handlers, or a second time while stopping. Each ends quietly with 130.
    try:
        args = _parse(argv)
        with _event_loop_runner() as runner:
            return int(runner.run(args.main(args)))
    except KeyboardInterrupt:
        return 130
    except ConfigError as e:
        # A cluster configuration that cannot be used: one line naming the problem and the fix.
        print(f"kubetrain: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
