"""In-memory defaulting of a job, per kind (reference 1.1, 1.3, 4 "Defaulting").

One implementation serves both places defaults are applied: the mutating admission webhook
persists them (``webhooks.py``), and the controller applies them in memory at the top of every
reconcile, for jobs stored while no webhook was installed. ``default_job`` returns a defaulted
copy and never mutates its input (cached objects are shared and read-only); only the parts that
change are copied, the rest is shared with the input, so the result is read-only too. It never
raises: a part of the wrong JSON type is left as it is, for validation to report with its path.

Applied, in this order:
- ``runPolicy.cleanPodPolicy`` = ``None`` when unset. MPIJob: ``runPolicy.cleanPodPolicy`` wins
  over the deprecated ``spec.cleanPodPolicy``; both end up holding the effective value;
- replica map keys camel-cased case-insensitively to the kind's canonical spelling (``worker`` ->
  ``Worker``, ``ps`` -> ``PS``); unknown keys are left alone; MPIJob keys are not normalised;
- ``replicas`` = 1 when unset (MPIJob: Launcher 1, Worker 0);
- ``restartPolicy`` = the kind's default when unset;
- the default port (``kind.default_port_name``/``default_port``) appended to the default container
  (or container 0) unless that container already has a port of that name (not MPIJob);
- PyTorchJob/PaddleJob ``elasticPolicy`` min/max: one set -> copied to the other; none -> both
  = Worker replicas;
- PyTorchJob ``spec.nprocPerNode = "auto"`` when unset and ``elasticPolicy.nProcPerNode`` unset.
"""

from __future__ import annotations

from kubetrain.base.objects import Obj
from kubetrain.reconcilers.api.kinds import MPIJOB, PADDLEJOB, PYTORCHJOB, JobKind

CLEAN_POD_POLICY_NONE = "None"


def default_job(kind: JobKind, job: Obj) -> Obj:
    """A defaulted copy of ``job`` (see the module docstring); ``job`` is not modified."""
    out = dict(job)
    raw_spec = job.get("spec")
    if raw_spec is not None and not isinstance(raw_spec, dict):
        return out  # nothing below a non-object spec can be defaulted
    spec: Obj = dict(raw_spec or {})
    out["spec"] = spec
    _default_clean_pod_policy(kind, spec)
    specs = spec.get(kind.replica_field)
    if isinstance(specs, dict):
        specs = _camel_case_keys(kind, specs)
        spec[kind.replica_field] = specs = {
            rtype: _default_replica(kind, rtype, rspec) for rtype, rspec in specs.items()
        }
    if kind in (PYTORCHJOB, PADDLEJOB):
        _default_elastic(spec, specs if isinstance(specs, dict) else {})
    if kind is PYTORCHJOB:
        elastic = spec.get("elasticPolicy")
        elastic = elastic if isinstance(elastic, dict) else {}
        if spec.get("nprocPerNode") is None and elastic.get("nProcPerNode") is None:
            spec["nprocPerNode"] = "auto"
    return out


def _default_clean_pod_policy(kind: JobKind, spec: Obj) -> None:
    raw = spec.get("runPolicy")
    if raw is not None and not isinstance(raw, dict):
        return
    run_policy: Obj = dict(raw or {})
    spec["runPolicy"] = run_policy
    if kind is MPIJOB:
        effective = (
            run_policy.get("cleanPodPolicy") or spec.get("cleanPodPolicy") or CLEAN_POD_POLICY_NONE
        )
        run_policy["cleanPodPolicy"] = effective
        spec["cleanPodPolicy"] = effective
    elif run_policy.get("cleanPodPolicy") is None:
        run_policy["cleanPodPolicy"] = CLEAN_POD_POLICY_NONE


def _camel_case_keys(kind: JobKind, specs: Obj) -> Obj:
    if kind is MPIJOB:
        return specs
    canonical = {t.lower(): t for t in kind.replica_types}
    out: Obj = {}
    for key, value in specs.items():
        out[canonical.get(key.lower(), key)] = value
    return out


def _default_replica(kind: JobKind, rtype: str, rspec: Obj | None) -> Obj | None:
    if not isinstance(rspec, dict):
        return rspec
    out = dict(rspec)
    if out.get("replicas") is None:
        out["replicas"] = 0 if (kind is MPIJOB and rtype == "Worker") else 1
    if not out.get("restartPolicy"):
        out["restartPolicy"] = kind.default_restart_policy
    if kind is not MPIJOB:
        template = out.get("template")
        if isinstance(template, dict):
            out["template"] = _with_default_port(kind, template)
    return out


def _with_default_port(kind: JobKind, template: Obj) -> Obj:
    pod_spec = template.get("spec") or {}
    if not isinstance(pod_spec, dict):
        return template
    containers: list[Obj] = pod_spec.get("containers") or []
    if not isinstance(containers, list) or not containers:
        return template
    index = 0
    for i, c in enumerate(containers):
        if isinstance(c, dict) and c.get("name") == kind.default_container:
            index = i
            break
    if not isinstance(containers[index], dict):
        return template
    ports: list[Obj] = containers[index].get("ports") or []
    if not isinstance(ports, list) or not all(isinstance(p, dict) for p in ports):
        return template
    if any(p.get("name") == kind.default_port_name for p in ports):
        return template
    container = dict(containers[index])
    container["ports"] = [
        *ports,
        {"name": kind.default_port_name, "containerPort": kind.default_port},
    ]
    new_containers = list(containers)
    new_containers[index] = container
    return {**template, "spec": {**pod_spec, "containers": new_containers}}


def _default_elastic(spec: Obj, specs: Obj) -> None:
    elastic = spec.get("elasticPolicy")
    if not isinstance(elastic, dict):
        return
    lo, hi = elastic.get("minReplicas"), elastic.get("maxReplicas")
    if lo is not None and hi is not None:
        return
    elastic = dict(elastic)
    if hi is not None:
        elastic["minReplicas"] = hi
    elif lo is not None:
        elastic["maxReplicas"] = lo
    else:
        worker = specs.get("Worker")
        replicas = worker.get("replicas") if isinstance(worker, dict) else None
        elastic["minReplicas"] = elastic["maxReplicas"] = replicas
    spec["elasticPolicy"] = elastic
