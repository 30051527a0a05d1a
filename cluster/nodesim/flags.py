"""The simulator's command-line flags, shared by ``python -m kubetrain.cluster.nodesim`` and
``kubetrain cluster``/``kubetrain up`` (which have their own ``--nodes``)."""

from __future__ import annotations

import argparse

from .options import DEFAULT_SCHEDULER, NodeSimOptions

__all__ = ["add_nodesim_flags", "options_from_args"]


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
