"""The ``kubetrain`` command line: one entry point, one subcommand per thing a user runs.

Subcommands parse flags into options objects and hand over to the room that does the work; no
logic lives here beyond wiring, signals and what is printed for the user.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
import sys
from collections.abc import Callable, Sequence

from kubetrain import __version__


async def _wait_for_stop_signal() -> None:
    """Return on SIGINT or SIGTERM, so ``finally`` blocks (clean shutdown) run."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)
    await stop.wait()


def _event_loop_runner() -> asyncio.Runner:
    """uvloop when it is installed (it is a dependency on Linux), asyncio's loop otherwise."""
    try:
        import uvloop

        return asyncio.Runner(loop_factory=uvloop.new_event_loop)
    except ImportError:  # pragma: no cover - non-Linux
        return asyncio.Runner()


async def _cluster_main(args: argparse.Namespace) -> int:
    from kubetrain.cluster.apiserver.persistence import PersistenceError
    from kubetrain.cluster.embedded import EmbeddedCluster
    from kubetrain.cluster.nodesim.flags import options_from_args

    cluster = EmbeddedCluster(
        port=args.port,
        nodes=args.nodes,
        data_dir=args.data,
        kubeconfig_path=args.kubeconfig,
        nodesim_options=options_from_args(args),
    )
    try:
        await cluster.start()
    except (PersistenceError, OSError) as exc:  # a locked --data dir, a --port in use
        print(f"kubetrain cluster: error: {exc}", file=sys.stderr, flush=True)
        return 1
    try:
        print(f"kubetrain cluster serving at {cluster.url}", flush=True)
        print(f"kubeconfig: {cluster.kubeconfig_path}", flush=True)
        print(f"try: kubectl --kubeconfig {cluster.kubeconfig_path} get nodes", flush=True)
        await _wait_for_stop_signal()
        print("stopping", flush=True)
    finally:
        await cluster.stop()
    return 0


def _add_cluster_flags(p: argparse.ArgumentParser, *, kubeconfig_default: str | None) -> None:
    p.add_argument(
        "--kubeconfig",
        default=kubeconfig_default,
        help="where to write the kubeconfig once serving (default: %(default)s)",
    )
    p.add_argument("--port", type=int, default=0, help="TCP port on 127.0.0.1 (0 picks a free one)")
    p.add_argument("--nodes", type=int, default=4, help="simulated nodes to register (default: 4)")
    p.add_argument(
        "--data",
        default=None,
        metavar="DIR",
        help="persist objects in DIR (SQLite) so a restart loses nothing",
    )
    from kubetrain.cluster.nodesim.flags import add_nodesim_flags

    add_nodesim_flags(p, with_nodes=False)


def _configure_cluster(p: argparse.ArgumentParser) -> None:
    _add_cluster_flags(p, kubeconfig_default="kubetrain.kubeconfig")
    p.set_defaults(main=_cluster_main)


def _configure_operator(p: argparse.ArgumentParser) -> None:
    from kubetrain.operator import add_operator_flags, run_operator

    add_operator_flags(p)
    p.set_defaults(main=run_operator)


def _configure_bench(p: argparse.ArgumentParser) -> None:
    from kubetrain.bench.cli import add_bench_flags, run_bench

    add_bench_flags(p)
    p.set_defaults(main=run_bench)


def _configure_up(p: argparse.ArgumentParser) -> None:
    _add_cluster_flags(p, kubeconfig_default="kubetrain.kubeconfig")
    from kubetrain.up import add_up_flags, run_up

    add_up_flags(p)
    p.set_defaults(main=run_up)


#: Subcommand -> (help, what adds its flags). Only the chosen one's flags are built: each pulls
#: in its room (the operator need not import the embedded cluster, the bench or rich), which is
#: CPU a process pays at every start.
COMMANDS: dict[str, tuple[str, Callable[[argparse.ArgumentParser], None]]] = {
    "cluster": ("run the embedded cluster (API server + simulated nodes)", _configure_cluster),
    "operator": ("run the job controllers against a cluster", _configure_operator),
    "bench": ("run a load scenario side by side with the baselines", _configure_bench),
    "up": ("embedded cluster + operator + example jobs, with live progress", _configure_up),
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


def main(argv: Sequence[str] | None = None) -> int:
    # GC for a large, long-lived heap (gctuning.py); KUBETRAIN_GC_TUNING=0 turns it off.
    if os.environ.get("KUBETRAIN_GC_TUNING", "1") != "0":
        from kubetrain import gctuning

        gctuning.install()
    # Ctrl-C can land anywhere: while subcommands import their modules, before the event loop
    # installs its handlers, or a second time while stopping. Each ends quietly with 130.
    try:
        args = build_parser(argv).parse_args(argv)
        with _event_loop_runner() as runner:
            return int(runner.run(args.main(args)))
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
