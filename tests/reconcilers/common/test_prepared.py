"""prepared_job: defaulting and validation done once per (kind, uid, resourceVersion)."""

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

PYTORCH = BY_KIND["PyTorchJob"]
EXAMPLE = yaml.safe_load(
    (Path(__file__).resolve().parents[3] / "examples" / "pytorchjob.yaml").read_text()
)


@pytest.fixture(autouse=True)
def empty_cache() -> Iterator[None]:
    prepared.clear()
    yield
    prepared.clear()


def job(uid: str = "u1", rv: str = "7", **spec: Any) -> dict[str, Any]:
    obj = copy.deepcopy(EXAMPLE)
    obj["metadata"].update(uid=uid, resourceVersion=rv)
    obj["spec"].update(spec)
    return obj


def test_the_same_resource_version_is_prepared_once() -> None:
    first = prepared_job(PYTORCH, job(), validated=True)
    again = prepared_job(PYTORCH, job(), validated=True)
    assert again is first
    assert first[0] == default_job(PYTORCH, job()) and first[1] == []


def test_a_new_resource_version_or_uid_is_prepared_anew() -> None:
    first = prepared_job(PYTORCH, job(), validated=True)
    assert prepared_job(PYTORCH, job(rv="8"), validated=True) is not first
    assert prepared_job(PYTORCH, job(uid="u2"), validated=True) is not first


def test_validation_errors_are_kept_with_the_version() -> None:
    bad = job(rv="9")
    del bad["spec"]["pytorchReplicaSpecs"]["Master"]["template"]["spec"]["containers"][0]["image"]
    _, errors = prepared_job(PYTORCH, bad, validated=True)
    assert errors and "image" in errors[0].field
    assert prepared_job(PYTORCH, bad, validated=True)[1] is errors


def test_a_job_without_identity_is_never_cached() -> None:
    anonymous = job()
    del anonymous["metadata"]["uid"]
    assert prepared_job(PYTORCH, anonymous, validated=False) is not prepared_job(
        PYTORCH, anonymous, validated=False
    )


def test_the_cache_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(prepared, "CAPACITY", 3)
    oldest = prepared_job(PYTORCH, job(rv="1"), validated=False)
    for rv in ("2", "3", "4"):
        prepared_job(PYTORCH, job(rv=rv), validated=False)
    assert prepared_job(PYTORCH, job(rv="1"), validated=False) is not oldest
    assert prepared_job(PYTORCH, job(rv="4"), validated=False) is prepared_job(
        PYTORCH, job(rv="4"), validated=False
    )
