"""``python -m kubetrain.cluster.nodesim --kubeconfig FILE --nodes N``: run the simulator against
any API server until SIGINT/SIGTERM."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
import sys
from collections.abc import Sequence

from kubetrain.engine.config import load_config

from .options import DEFAULT_SCHEDULER, NodeSimOptions
from .simulator import NodeSimulator

__all__ = ["add_nodesim_flags", "main", "options_from_args"]


def add_nodesim_flags(p: argparse.ArgumentParser, *, with_nodes: bool = True) -> None:
    """The simulator's flags (shared with ``kubetrain cluster``, which has its own ``--nodes``)."""
    d = NodeSimOptions()
    if with_nodes:
        p.add_argument(
            "--nodes", type=int, default=d.nodes, help="nodes to register (default: %(default)s)"
        )
    p.add_argument("--node-cpu", default=d.cpu, help="cpu per node (default: %(default)s)")
    p.add_argument("--node-memory", default=d.memory, help="memory per node (default: %(default)s)")
    p.add_argument(
        "--node-pods", type=int, default=d.pods, help="pods per node (default: %(default)s)"
    )
    p.add_argument(
        "--node-gpus",
        type=int,
        default=d.gpus,
        help="nvidia.com/gpu per node (default: %(default)s)",
    )
    p.add_argument(
        "--scheduler-name",
        action="append",
        default=None,
        help=f"schedule pods of this schedulerName (repeatable; default: {DEFAULT_SCHEDULER})",
    )
    p.add_argument(
        "--pod-run-seconds",
        type=float,
        default=d.default_run_seconds,
        help="container run time without the sim.kubetrain.dev/run-seconds annotation "
        "(default: %(default)s)",
    )
    p.add_argument(
        "--pod-start-delay-seconds",
        type=float,
        default=d.default_start_delay_seconds,
        help="ContainerCreating time without the annotation (default: %(default)s)",
    )


def options_from_args(args: argparse.Namespace, *, nodes: int) -> NodeSimOptions:
    return NodeSimOptions(
        nodes=nodes,
        cpu=args.node_cpu,
        memory=args.node_memory,
        pods=args.node_pods,
        gpus=args.node_gpus,
        scheduler_names=frozenset(args.scheduler_name or [DEFAULT_SCHEDULER]),
        default_run_seconds=args.pod_run_seconds,
        default_start_delay_seconds=args.pod_start_delay_seconds,
    )


async def _run(args: argparse.Namespace) -> int:
    options = options_from_args(args, nodes=args.nodes)
    sim = NodeSimulator.for_config(load_config(args.kubeconfig, context=args.context), options)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)
    await sim.start()
    print(
        f"nodesim: {options.nodes} nodes serving pods of {sorted(options.scheduler_names)}",
        flush=True,
    )
    try:
        await stop.wait()
    finally:
        await sim.stop()
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m kubetrain.cluster.nodesim",
        description="Simulated nodes (kubelets + scheduler) for any Kubernetes API server.",
    )
    parser.add_argument(
        "--kubeconfig", default=None, help="kubeconfig file (default: the usual lookup)"
    )
    parser.add_argument("--context", default=None, help="kubeconfig context (default: current)")
    add_nodesim_flags(parser)
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    return asyncio.run(_run(args))


if __name__ == "__main__":
    sys.exit(main())
