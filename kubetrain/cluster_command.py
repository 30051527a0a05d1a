"""``kubetrain cluster``: the embedded cluster alone, in the foreground, and ``ClusterOptions``,
the flags it shares with ``kubetrain up`` (each declared once on its field, ``base.flags``).

``--nodes`` is the command's own (the simulator's ``NodeSimOptions.nodes`` is replaced by it);
the simulator's other flags come from ``cluster.nodesim.flags``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ipaddress
import signal
import sys
from dataclasses import dataclass, field
from typing import TypeVar

from kubetrain.base import flags
from kubetrain.base.flags import flag
from kubetrain.cluster.apiserver.persistence import PersistenceError
from kubetrain.cluster.embedded import EmbeddedCluster
from kubetrain.cluster.nodesim.flags import add_nodesim_flags
from kubetrain.cluster.nodesim.flags import options_from_args as nodesim_options_from_args
from kubetrain.cluster.nodesim.options import NodeSimOptions

__all__ = ["ClusterOptions", "add_cluster_flags", "options_from_args", "run_cluster"]

_NODESIM_DEFAULTS = NodeSimOptions()


@dataclass(frozen=True, slots=True, kw_only=True)
class ClusterOptions:
    """What ``kubetrain cluster`` (and the cluster of ``kubetrain up``) serves."""

    kubeconfig_path: str = field(
        default="kubetrain.kubeconfig",
        metadata=flag(
            "--kubeconfig", "where to write the kubeconfig once serving", metavar="KUBECONFIG"
        ),
    )
    address: str = field(
        default="127.0.0.1",
        metadata=flag(
            "--address",
            "interface the API server binds; anything but loopback exposes it beyond this "
            "machine (0.0.0.0: every interface; refused with --insecure)",
        ),
    )
    port: int = field(
        default=0,
        metadata=flag("--port", "TCP port (0 picks a free one)", show_default=False),
    )
    insecure: bool = field(
        default=False,
        metadata=flag(
            "--insecure",
            "serve plain http and authenticate nobody (loopback only); default: https with a "
            "bearer token, both in the kubeconfig written (mode 0600)",
        ),
    )
    nodes: int = field(
        default=_NODESIM_DEFAULTS.nodes,
        metadata=flag("--nodes", "simulated nodes to register"),
    )
    data_dir: str | None = field(
        default=None,
        metadata=flag(
            "--data",
            "persist objects in DIR (SQLite) so a restart loses nothing",
            metavar="DIR",
            show_default=False,
        ),
    )
    kube_controllers: bool = field(
        default=True,
        metadata=flag(
            "--kube-controllers",
            "run batch/v1 Jobs as kube-controller-manager does (the Job and TTL-after-finished "
            "controllers; --no-kube-controllers stores Jobs and never runs them)",
            negatable=True,
        ),
    )
    nodesim_options: NodeSimOptions = field(default_factory=NodeSimOptions)
    """The simulated nodes' options (from the simulator's flags); ``nodes`` above replaces
    their ``nodes``."""

    def __post_init__(self) -> None:
        if self.insecure and not _is_loopback(self.address):
            raise ValueError(
                f"--insecure serves an unauthenticated API: only on loopback, not --address "
                f"{self.address} (drop --insecure, or bind 127.0.0.1)"
            )


def _is_loopback(address: str) -> bool:
    if address == "localhost":
        return True
    try:
        return ipaddress.ip_address(address).is_loopback
    except ValueError:
        return False


ClusterOptionsT = TypeVar("ClusterOptionsT", bound=ClusterOptions)


def add_cluster_flags(
    p: argparse.ArgumentParser, options: type[ClusterOptions] = ClusterOptions
) -> None:
    """Declare the flags of ``options`` (``ClusterOptions`` or a command's extension of it,
    such as ``kubetrain up``'s) and the simulator's."""
    flags.add_flags(p, options)
    add_nodesim_flags(p, with_nodes=False)


def options_from_args(options: type[ClusterOptionsT], args: argparse.Namespace) -> ClusterOptionsT:
    """An ``options`` (as given to ``add_cluster_flags``) from the parsed flags."""
    return flags.options_from_args(options, args, nodesim_options=nodesim_options_from_args(args))


def new_cluster(options: ClusterOptions) -> EmbeddedCluster:
    """The embedded cluster ``options`` describe (not started)."""
    return EmbeddedCluster(
        host=options.address,
        secure=not options.insecure,
        port=options.port,
        nodes=options.nodes,
        data_dir=options.data_dir,
        kubeconfig_path=options.kubeconfig_path,
        nodesim_options=options.nodesim_options,
        kube_controllers=options.kube_controllers,
    )


def _stop_on_signals() -> asyncio.Event:
    """An event set on SIGINT or SIGTERM, so ``finally`` blocks (clean shutdown) run. Installed
    before the cluster starts: a signal while it starts (its controllers sync) stops it once
    started, rather than killing the process."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)
    return stop


async def run_cluster(args: argparse.Namespace) -> int:
    """``kubetrain cluster``: serve until SIGINT/SIGTERM; the process exit status."""
    try:
        options = options_from_args(ClusterOptions, args)
    except ValueError as exc:  # a value the options refuse, e.g. --nodes -1
        print(f"kubetrain cluster: error: {exc}", file=sys.stderr, flush=True)
        return 2
    cluster = new_cluster(options)
    stop = _stop_on_signals()
    try:
        await cluster.start()
    except (PersistenceError, OSError) as exc:  # a locked --data dir, a --port in use
        print(f"kubetrain cluster: error: {exc}", file=sys.stderr, flush=True)
        return 1
    try:
        print(f"kubetrain cluster serving at {cluster.url}", flush=True)
        print(f"kubeconfig: {cluster.kubeconfig_path}", flush=True)
        print(f"try: kubectl --kubeconfig {cluster.kubeconfig_path} get nodes", flush=True)
        await stop.wait()
        print("stopping", flush=True)
    finally:
        await cluster.stop()
    return 0
