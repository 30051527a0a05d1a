"""prepared_job: defaulting and validation done once per (kind, uid, generation)."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from kubetrain.reconcilers.api.defaults import default_job
from kubetrain.reconcilers.api.kinds import BY_KIND
from kubetrain.reconcilers.common import prepared
from kubetrain.reconcilers.common.prepared import prepared_job
from kubetrain.reconcilers.common.runpolicy import OPERATOR_RESTARTS_ANNOTATION

PYTORCH = BY_KIND["PyTorchJob"]
EXAMPLE = yaml.safe_load(
    (Path(__file__).resolve().parents[3] / "examples" / "pytorchjob.yaml").read_text()
)


@pytest.fixture(autouse=True)
def empty_cache() -> Iterator[None]:
    prepared.clear()
    yield
    prepared.clear()


def job(uid: str = "u1", rv: str = "7", generation: int | None = 1, **spec: Any) -> dict[str, Any]:
    obj = copy.deepcopy(EXAMPLE)
    obj["metadata"].update(uid=uid, resourceVersion=rv)
    if generation is not None:
        obj["metadata"]["generation"] = generation
    obj["spec"].update(spec)
    return obj


def test_the_same_generation_is_prepared_once() -> None:
    first, errors = prepared_job(PYTORCH, job(), validated=True)
    again, again_errors = prepared_job(PYTORCH, job(), validated=True)
    assert again["spec"] is first["spec"] and again_errors is errors
    assert first == default_job(PYTORCH, job()) and errors == []


def test_metadata_and_status_are_the_callers_own_at_every_version() -> None:
    """A status write or an annotation (the operator's restart count) gives a new
    resourceVersion but keeps the generation: the defaulted spec is reused, and what else the
    job holds is this call's."""
    first, _ = prepared_job(PYTORCH, job(), validated=False)
    later = job(rv="8")
    later["metadata"]["annotations"] = {OPERATOR_RESTARTS_ANNOTATION: "2"}
    later["status"] = {"startTime": "2025-01-01T12:00:00Z"}
    prepared, _ = prepared_job(PYTORCH, later, validated=False)
    assert prepared["spec"] is first["spec"]
    assert prepared["metadata"] is later["metadata"] and prepared["status"] is later["status"]
    assert prepared == default_job(PYTORCH, later)


def test_a_new_generation_or_uid_is_prepared_anew() -> None:
    first, _ = prepared_job(PYTORCH, job(), validated=True)
    changed, _ = prepared_job(PYTORCH, job(rv="8", generation=2, runPolicy={}), validated=True)
    assert changed["spec"] is not first["spec"]
    assert prepared_job(PYTORCH, job(uid="u2"), validated=True)[0]["spec"] is not first["spec"]


def test_without_a_generation_the_resource_version_keys_it() -> None:
    first, _ = prepared_job(PYTORCH, job(generation=None), validated=True)
    assert prepared_job(PYTORCH, job(generation=None), validated=True)[0]["spec"] is first["spec"]
    assert (
        prepared_job(PYTORCH, job(rv="8", generation=None), validated=True)[0]["spec"]
        is not first["spec"]
    )


def test_validation_errors_are_kept_with_the_generation() -> None:
    bad = job(rv="9")
    del bad["spec"]["pytorchReplicaSpecs"]["Master"]["template"]["spec"]["containers"][0]["image"]
    _, errors = prepared_job(PYTORCH, bad, validated=True)
    assert errors and "image" in errors[0].field
    assert prepared_job(PYTORCH, bad, validated=True)[1] is errors
    assert prepared_job(PYTORCH, bad, validated=False)[1] == [], "validated is part of the key"


def test_a_job_without_identity_is_never_cached() -> None:
    anonymous = job()
    del anonymous["metadata"]["uid"]
    assert (
        prepared_job(PYTORCH, anonymous, validated=False)[0]["spec"]
        is not prepared_job(PYTORCH, anonymous, validated=False)[0]["spec"]
    )


def test_the_cache_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(prepared, "CAPACITY", 3)
    oldest = prepared_job(PYTORCH, job(generation=1), validated=False)[0]["spec"]
    for generation in (2, 3, 4):
        prepared_job(PYTORCH, job(generation=generation), validated=False)
    assert prepared_job(PYTORCH, job(generation=1), validated=False)[0]["spec"] is not oldest
    assert (
        prepared_job(PYTORCH, job(generation=4), validated=False)[0]["spec"]
        is prepared_job(PYTORCH, job(generation=4), validated=False)[0]["spec"]
    )
