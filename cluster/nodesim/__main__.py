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

from .flags import add_nodesim_flags, options_from_args
from .simulator import NodeSimulator

__all__ = ["main"]


async def _run(args: argparse.Namespace) -> int:
    options = options_from_args(args)
    sim = NodeSimulator.for_config(
        await load_config(args.kubeconfig, context=args.context), options
    )
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
