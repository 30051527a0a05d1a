"""kubetrain's TrainJob builder against the reference Kubeflow Trainer controller (v2.0.0, the
only version the Go module proxy serves; built by ``tools/conformance/build_trainer.sh``) on a
real control plane.

For each case of ``conformance/trainer.py`` ``CASES`` Trainer applies a JobSet (and, for MPI,
its hostfile ConfigMap and SSH Secret) for a TrainJob; kubetrain's pure builder
(``build_objects``) builds them from the same stored TrainJob and runtime. Every difference must
be explained (``KNOWN_DIFFERENCES`` or a Go serialization pattern: v2.0.0 vs v2.3.0 behaviour,
or a kubetrain bug written down with the Go line that shows it), and every explained difference
must still show, so the table stays true. ``tools/conformance/compare_trainer.py`` prints it.

Runs only in the conformance tier (``--apiserver=real``) and is skipped when Trainer is not
built.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from conformance.trainer import (
    CASES,
    KNOWN_DIFFERENCES,
    TRAINER_VERSION,
    compare_cases,
    find_trainer,
    format_table,
    running_trainer,
    trainer_root,
)

from kubetrain.engine.client import ApiClient
from kubetrain.engine.config import load_kubeconfig

pytestmark = pytest.mark.conformance


@pytest.mark.timeout(300)
async def test_trainer_v200_builds_what_kubetrain_builds(cluster: Any, tmp_path: Path) -> None:
    if find_trainer() is None:
        pytest.skip(
            f"Trainer {TRAINER_VERSION} is not built in {trainer_root()}: run "
            "tools/conformance/build_trainer.sh (about 4 minutes on 2 cores)"
        )
    config = await load_kubeconfig(cluster.kubeconfig_path)
    async with (
        ApiClient(config) as client,
        running_trainer(client, cluster.kubeconfig_path, tmp_path / "trainer"),
    ):
        results = await compare_cases(client, CASES)
    table = format_table(results)
    errors = [f"{r.case.name}: {r.unexpected_error}" for r in results if r.unexpected_error]
    assert not errors, f"{errors}\n{table}"
    unexplained = [d for r in results for d in r.differences if d.explanation is None]
    assert not unexplained, "unexplained differences:\n" + "\n".join(
        f"{d.case}: {d.path}: reference {d.reference!r}, kubetrain {d.kubetrain!r}"
        for d in unexplained
    )
    seen = {(d.case, d.path) for r in results for d in r.differences}
    stale = [key for key in KNOWN_DIFFERENCES if key not in seen]
    assert not stale, (
        f"explained differences that no longer show (update KNOWN_DIFFERENCES): {stale}"
    )
