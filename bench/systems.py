"""The measured systems and how each is started as its own process against a kubeconfig.

- ``kubetrain``: ``kubetrain operator`` (PyTorchJob only, one namespace; with ``--job-kind
  mpijob-v2beta1``: MPIJob only, with its webhook server; with ``--job-kind trainjob``: its
  TrainJob controller, ``--trainjobs on``) at its defaults: the adaptive in-flight limit, and a
  fixed rate cap only when ``operator_qps`` > 0;
- ``raw``: ``python -m kubetrain.bench.baselines.raw``;
- ``kopf``: ``kopf run --standalone`` of ``bench/baselines/kopf_operator.py``;
- ``reference``: the Kubeflow Training Operator v1.9.x Go binary (``reference_operator.py``; built
  by ``tools/conformance/build_reference_operator.sh``), with the same client-side limit as
  kubetrain (``operator_qps``/``operator_burst``). Not in ``DEFAULT_SYSTEMS``: it needs the Go build.

Each runs with the kubeconfig it is given (``--operator-kubeconfig``: on a real API server, a
service account's, so that priority and fairness classifies it as a workload; all systems get the
same identity, see ``tools/conformance/real_cluster.py --service-accounts`` for its rights).
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

from .harness import ManagedProcess
from .jobs import JOB_KINDS, MPIJOB_V2BETA1, TRAINJOB
from .reference_operator import ReferenceOperatorProcess

__all__ = ["DEFAULT_SYSTEMS", "KOPF_OPERATOR_FILE", "SYSTEMS", "SystemOptions", "system_process"]

SYSTEMS = ("kubetrain", "raw", "kopf", "reference")
"""Every system ``--systems`` accepts."""
DEFAULT_SYSTEMS = ("kubetrain", "raw", "kopf")
"""``--systems`` when not given: the ones that need nothing but this package's dependencies."""
KOPF_OPERATOR_FILE = Path(__file__).parent / "baselines" / "kopf_operator.py"
"""Passed to ``kopf run`` by path (importing it here would register its handlers in the harness)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class SystemOptions:
    operator_qps: float = 0.0
    """``kubetrain operator --kube-api-qps`` and the reference's. ``<= 0``: no fixed cap; for
    kubetrain that is its default (the adaptive in-flight limit), for the reference no limit at
    all (its own default is 20)."""
    operator_burst: int = 0
    """``kubetrain operator --kube-api-burst`` (0: 1.5 x qps) and the reference's (ignored when
    ``operator_qps`` is ``<= 0``)."""
    operator_args: tuple[str, ...] = ()
    """More ``kubetrain operator`` flags, appended as given (e.g. ``--controller-threads 4``)."""
    reference_args: tuple[str, ...] = ()
    """More reference-operator flags, appended as given (a later flag wins over ours, e.g.
    ``--controller-threads 128``; the reference's default is 1, kubetrain's 128)."""


def system_process(
    name: str,
    *,
    kubeconfig: str,
    namespace: str,
    log_path: Path,
    options: SystemOptions,
    harness_kubeconfig: str | None = None,
    job_kind: str = "pytorchjob",
    webhook_port: int = 0,
    operator_namespace: str = "",
) -> ManagedProcess:
    """The process of system ``name`` (one of ``SYSTEMS``) watching ``namespace``, running with
    ``kubeconfig``; not started. ``harness_kubeconfig`` (default: ``kubeconfig``) is what the
    harness itself uses to prepare a system (the reference's certificate Secret).

    ``job_kind`` (``jobs.JOB_KINDS``): ``mpijob-v2beta1`` runs kubetrain with ``--enable-scheme
    mpijob``, its webhook server on ``webhook_port`` (the CRD's conversion, which the harness
    routes to it) and its certificate Secret in ``operator_namespace``; only kubetrain runs it.
    ``trainjob`` runs kubetrain with ``--trainjobs on`` beside ``--enable-scheme pytorchjob``
    (the operator runs at least one v1 kind; no PyTorchJob is in the namespace, and its pod
    and Service caches select by its own label, so it neither caches the TrainJobs' pods nor
    writes) and no webhook server: the harness creates valid TrainJobs, and without the server
    the trainer status server is off, so nothing is injected into the JobSets."""
    py = sys.executable
    kind = JOB_KINDS.get(job_kind)
    if kind is None:
        raise ValueError(
            f"--job-kind: unknown kind {job_kind!r}; choose from {', '.join(JOB_KINDS)}"
        )
    if name in SYSTEMS and name not in kind.systems:
        raise ValueError(
            f"--job-kind {job_kind}: system {name!r} cannot run it (only {', '.join(kind.systems)})"
        )
    if name == "kubetrain":
        if kind is MPIJOB_V2BETA1:
            if not webhook_port or not operator_namespace:
                raise ValueError(
                    "--job-kind mpijob-v2beta1 needs the webhook server (a port and the "
                    "operator's namespace): v2beta1 is converted by it"
                )
            scheme = [
                "--enable-scheme", "mpijob",
                "--webhook-server-port", str(webhook_port),
                "--operator-namespace", operator_namespace,
            ]  # fmt: skip
        elif kind is TRAINJOB:
            scheme = [
                "--enable-scheme", "pytorchjob", "--trainjobs", "on",
                "--webhook-server-port", "0",
            ]  # fmt: skip
        else:
            # The v1 runs install no webhook configurations: no server, no Secret writes.
            scheme = ["--enable-scheme", "pytorchjob", "--webhook-server-port", "0"]
        argv = [
            py, "-m", "kubetrain.cli", "operator",
            "--kubeconfig", kubeconfig,
            *scheme,
            "--namespace", namespace,
            "--metrics-bind-address", "0",
            "--health-probe-bind-address", "0",
            "--kube-api-qps", str(options.operator_qps),
            "--kube-api-burst", str(options.operator_burst),
            *options.operator_args,
        ]  # fmt: skip
        return ManagedProcess(name, argv, log_path=log_path)
    if name == "raw":
        argv = [
            py, "-m", "kubetrain.bench.baselines.raw",
            "--kubeconfig", kubeconfig, "--namespace", namespace,
        ]  # fmt: skip
        return ManagedProcess(name, argv, log_path=log_path)
    if name == "kopf":
        argv = [
            py, "-m", "kopf", "run", "--standalone",
            "--namespace", namespace, str(KOPF_OPERATOR_FILE),
        ]  # fmt: skip
        return ManagedProcess(name, argv, log_path=log_path, env={"KUBECONFIG": kubeconfig})
    if name == "reference":
        return ReferenceOperatorProcess(
            kubeconfig=kubeconfig,
            namespace=namespace,
            log_path=log_path,
            qps=options.operator_qps,
            burst=options.operator_burst,
            extra_args=options.reference_args,
            harness_kubeconfig=harness_kubeconfig,
        )
    raise ValueError(
        f"unknown system {name!r}: pass --systems with names from {', '.join(SYSTEMS)}"
    )
