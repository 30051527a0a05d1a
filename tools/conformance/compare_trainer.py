"""Compare the JobSets the reference Kubeflow Trainer controller (v2.0.0, built by
``tools/conformance/build_trainer.sh``) applies for a set of TrainJobs with the ones kubetrain's
pure builder (``kubetrain.reconcilers.trainer.objects.build_objects``) builds from the same
stored TrainJob and runtime, on a real control plane; print the differences, each with its
explanation (``tests/conformance/trainer.py`` ``KNOWN_DIFFERENCES``) or ``UNEXPLAINED``.

Usage: .venv/bin/python tools/conformance/compare_trainer.py [--case NAME ...] [--json FILE]
       [--keep]
Exit status: 0 when every difference is explained and every explained one still shows, 1
otherwise, 2 when Trainer or the control plane is not built.

Needs: tools/conformance/build.sh (kube-apiserver), tools/conformance/build_trainer.sh. Test-support
code: it uses tests/conformance/{controlplane,outside_manager,trainer}.py.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "tests"))

from conformance.controlplane import ControlPlaneUnavailable, RealControlPlane
from conformance.trainer import (
    CASES,
    KNOWN_DIFFERENCES,
    CaseResult,
    compare_cases,
    find_trainer,
    format_table,
    running_trainer,
    trainer_root,
)

from kubetrain.engine.client import ApiClient
from kubetrain.engine.config import load_kubeconfig


async def run(case_names: list[str], keep: bool) -> tuple[list[CaseResult], str]:
    cases = [c for c in CASES if not case_names or c.name in case_names]
    unknown = set(case_names) - {c.name for c in CASES}
    if unknown:
        raise SystemExit(f"unknown case(s) {sorted(unknown)}; cases: {[c.name for c in CASES]}")
    work = Path(tempfile.mkdtemp(prefix="kubetrain-trainer-ref-"))
    async with RealControlPlane() as plane:
        config = await load_kubeconfig(plane.kubeconfig_path)
        async with (
            ApiClient(config) as client,
            running_trainer(client, plane.kubeconfig_path, work) as trainer,
        ):
            results = await compare_cases(client, cases)
            log = trainer.log_tail(200) if keep else ""
    return results, log


def stale(results: list[CaseResult]) -> list[tuple[str, str]]:
    """Explained differences of the cases that ran which no longer show."""
    ran = {r.case.name for r in results if not r.error}
    seen = {(d.case, d.path) for r in results for d in r.differences}
    return [key for key in KNOWN_DIFFERENCES if key[0] in ran and key not in seen]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--case", action="append", default=[], help="run only this case")
    parser.add_argument("--json", type=Path, help="write the results (both JobSets) here")
    parser.add_argument("--keep", action="store_true", help="print Trainer's log tail")
    args = parser.parse_args()
    if find_trainer() is None:
        print(
            f"Trainer is not built in {trainer_root()}: run tools/conformance/build_trainer.sh",
            file=sys.stderr,
        )
        return 2
    try:
        results, log = asyncio.run(run(args.case, args.keep))
    except ControlPlaneUnavailable as err:
        print(f"no control plane: {err}", file=sys.stderr)
        return 2
    print(format_table(results))
    if log:
        print("\n-- trainer log tail --\n" + log)
    if args.json:
        args.json.write_text(
            json.dumps(
                [
                    {
                        "case": r.case.name,
                        "error": r.error,
                        "reference": r.reference,
                        "kubetrain": r.kubetrain,
                        "differences": [
                            {
                                "path": d.path,
                                "reference": d.reference,
                                "kubetrain": d.kubetrain,
                                "why": d.explanation,
                            }
                            for d in r.differences
                        ],
                    }
                    for r in results
                ],
                indent=2,
                default=str,
            )
        )
    errors = [r for r in results if r.unexpected_error]
    unexplained = [d for r in results for d in r.differences if d.explanation is None]
    gone = stale(results)
    for case, path in gone:
        print(f"STALE explanation (no longer differs): {case}: {path}")
    print(
        f"\n{len(results)} cases, {sum(len(r.differences) for r in results)} differences, "
        f"{len(unexplained)} unexplained, {len(errors)} errors, {len(gone)} stale explanations"
    )
    return 1 if errors or unexplained or gone else 0


if __name__ == "__main__":
    raise SystemExit(main())
