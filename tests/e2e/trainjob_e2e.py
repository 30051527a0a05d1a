"""Shared by the TrainJob end-to-end tests: the cluster with the Trainer CRDs, the built-in
ClusterTrainingRuntimes and the operator's TrainJob controller, and small helpers.

``open_trainer_env`` runs the embedded cluster's JobSet controller, or under ``--apiserver=real``
the real JobSet controller (``conformance/jobset.py``) next to the real plane. A test module
declares its own module-scoped ``env`` fixture over it (see ``test_trainjobs.py``).
"""

from __future__ import annotations

import asyncio
import contextlib
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from conformance.apiserver_switch import selected_apiserver
from conformance.jobset import find_jobset, jobset_root, running_jobset
from conformance.outside_manager import install_crds
from jobkit_e2e import Env, open_env
from kubeapply import kubectl

from kubetrain.informers.transport import ApiStatusError
from kubetrain.reconcilers.trainer.crds import trainer_crds
from kubetrain.reconcilers.trainer.public import PUBLIC_RESOURCES, public_objects
from kubetrain.reconcilers.trainer.resources import CLUSTER_TRAINING_RUNTIMES
from kubetrain.reconcilers.trainer.runtimes import builtin_runtimes

Obj = dict[str, Any]


async def open_trainer_env(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    *,
    nodes: int = 4,
    **operator_options: Any,
) -> AsyncIterator[Env]:
    """The embedded cluster's JobSet, or under ``--apiserver=real`` the real JobSet controller
    next to the real plane; then the Trainer CRDs, the built-in ClusterTrainingRuntimes and the
    operator's TrainJob controller (``operator_options`` go to ``Env.start_operator``)."""
    apiserver = selected_apiserver(request.config)
    if apiserver == "real" and find_jobset() is None:
        pytest.fail(
            f"JobSet is not built in {jobset_root()}: run tools/conformance/build_jobset.sh"
        )
    async for e in open_env(nodes=nodes, apiserver=apiserver, kube_controllers=True):
        async with contextlib.AsyncExitStack() as stack:
            if apiserver == "real":
                work = Path(tmp_path_factory.mktemp("jobset"))
                await stack.enter_async_context(
                    running_jobset(e.client, e.cluster.kubeconfig_path, work)
                )
            await install_crds(e.client, trainer_crds())
            for runtime in builtin_runtimes():
                if runtime["kind"] == "ClusterTrainingRuntime":
                    await e.client.create(CLUSTER_TRAINING_RUNTIMES, runtime)
            for obj in public_objects():  # what deploy/trainer-public installs
                await e.client.create_if_absent(PUBLIC_RESOURCES[obj["kind"]], obj)
            await e.start_operator(trainjobs="on", **operator_options)
            try:
                yield e
            finally:
                await e.stop_operator()  # before the JobSet controller and its webhooks go


async def run_kubectl(
    env: Env, *args: str, stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    return await asyncio.to_thread(kubectl, env.cluster.kubeconfig_path, *args, stdin=stdin)


def trainjob(name: str, ns: str, **spec: Any) -> Obj:
    """A TrainJob on ``torch-distributed`` unless ``runtimeRef`` is given."""
    return {
        "apiVersion": "trainer.kubeflow.org/v1alpha1",
        "kind": "TrainJob",
        "metadata": {"name": name, "namespace": ns},
        "spec": {"runtimeRef": {"name": "torch-distributed"}, **spec},
    }


async def get(env: Env, ref: Any, ns: str, name: str) -> Obj | None:
    try:
        return await env.client.get(ref, ns, name)
    except ApiStatusError as e:
        if e.is_not_found:
            return None
        raise


def condition(obj: Obj, ctype: str) -> Obj | None:
    """The True condition of ``ctype``, or None."""
    conds = (obj.get("status") or {}).get("conditions") or []
    return next((c for c in conds if c["type"] == ctype and c["status"] == "True"), None)
