"""A real control plane (etcd + kube-apiserver + kube-controller-manager from build.sh) with
kubetrain's simulated nodes, serving until Ctrl-C / SIGTERM: what `kubetrain bench --kubeconfig`
runs against to measure kubetrain and the reference operator on a real API server.

Usage: .venv/bin/python tools/conformance/real_cluster.py --kubeconfig real.kubeconfig [--nodes 4]
       [--node-pods 600]
The kubeconfig is written once the API server and the nodes are up. Test-support code: it uses
tests/conformance/controlplane.py; the product never depends on Go.
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import signal
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "tests"))

from conformance.controlplane import RealControlPlane

from kubetrain.cluster.nodesim.options import NodeSimOptions
from kubetrain.cluster.nodesim.simulator import NodeSimulator
from kubetrain.engine.config import load_kubeconfig


async def serve(args: argparse.Namespace) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    async with RealControlPlane() as plane:
        sim = NodeSimulator.for_config(
            await load_kubeconfig(plane.kubeconfig_path),
            NodeSimOptions(nodes=args.nodes, pods=args.node_pods),
        )
        await sim.start()
        try:
            shutil.copyfile(plane.kubeconfig_path, args.kubeconfig)
            print(f"real control plane at {plane.url}; kubeconfig {args.kubeconfig}", flush=True)
            await stop.wait()
        finally:
            await sim.stop()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--kubeconfig", required=True, help="where to write the kubeconfig")
    p.add_argument("--nodes", type=int, default=4, help="simulated nodes (default: %(default)s)")
    p.add_argument(
        "--node-pods", type=int, default=600, help="pods per node (default: %(default)s)"
    )
    asyncio.run(serve(p.parse_args()))


if __name__ == "__main__":
    main()
