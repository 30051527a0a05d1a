"""What the shipped CRD schema (with Kubernetes' full PodTemplateSpec) costs the embedded API
server, beside the same job with the pod template left open: compiling the schema once per CRD,
and the prune + defaults + validate steps of every job write.

Run with ``pytest tests/reconcilers/api/test_bench_crd_schema.py --benchmark-only``; compare the
``open`` and ``full`` rows of one run.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml

from kubetrain.cluster.apiserver.schema import StructuralSchema
from kubetrain.reconcilers.api import crds
from kubetrain.reconcilers.api.kinds import BY_KIND

PYTORCH = BY_KIND["PyTorchJob"]
JOB = yaml.safe_load(
    (Path(__file__).resolve().parents[3] / "examples" / "pytorchjob.yaml").read_text()
)


def _open_template_schema() -> dict[str, Any]:
    """The PyTorchJob schema with each pod template preserved as given (the schema before the
    PodTemplateSpec was vendored)."""
    schema = crds.job_schema(PYTORCH)
    replica = schema["properties"]["spec"]["properties"][PYTORCH.replica_field]
    replica["additionalProperties"]["properties"]["template"] = {
        "type": "object",
        "x-kubernetes-preserve-unknown-fields": True,
    }
    return schema


SCHEMAS = {"open": _open_template_schema(), "full": crds.job_schema(PYTORCH)}


@pytest.mark.parametrize("which", sorted(SCHEMAS))
def test_bench_compile(benchmark: Any, which: str) -> None:
    benchmark(StructuralSchema, SCHEMAS[which])


@pytest.mark.parametrize("which", sorted(SCHEMAS))
def test_bench_job_write_path(benchmark: Any, which: str) -> None:
    schema = StructuralSchema(SCHEMAS[which])

    def write() -> int:
        job = copy.deepcopy(JOB)
        schema.prune(job)
        schema.apply_defaults(job)
        return len(schema.validate(job))

    assert benchmark(write) == 0
