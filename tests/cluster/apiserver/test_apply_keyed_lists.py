"""Server-side apply of a custom resource's keyed list (``x-kubernetes-list-type: map``): an
applied item merges into the stored item of the same key, field by field, so what another
writer set in it (a webhook's default, another manager's field) stays. An ``atomic`` list is
replaced whole. On the embedded server and under ``--apiserver=real``.

Why it matters: re-applying a suspended JobSet (Kubeflow Trainer does on every resume) must keep
what JobSet's webhook defaulted inside each ``replicatedJobs`` item at creation.
"""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from apiserver_helpers import CRDS, Raw, create_crd, eventually

pytestmark = pytest.mark.http_api

GROUP = "keys.example.com"
CRD_NAME = f"gadgets.{GROUP}"
GADGETS = f"/apis/{GROUP}/v1/namespaces/default/gadgets"
APPLY = "application/apply-patch+yaml"


def _item() -> dict[str, Any]:
    return {
        "type": "object",
        "required": ["name"],
        "properties": {
            "name": {"type": "string"},
            "x": {"type": "integer"},
            "y": {"type": "integer"},
        },
    }


def gadget_crd() -> dict[str, Any]:
    schema = {
        "type": "object",
        "properties": {
            "spec": {
                "type": "object",
                "properties": {
                    "parts": {
                        "type": "array",
                        "x-kubernetes-list-type": "map",
                        "x-kubernetes-list-map-keys": ["name"],
                        "items": _item(),
                    },
                    "whole": {
                        "type": "array",
                        "x-kubernetes-list-type": "atomic",
                        "items": _item(),
                    },
                },
            }
        },
    }
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": CRD_NAME},
        "spec": {
            "group": GROUP,
            "scope": "Namespaced",
            "names": {"plural": "gadgets", "singular": "gadget", "kind": "Gadget"},
            "versions": [
                {
                    "name": "v1",
                    "served": True,
                    "storage": True,
                    "schema": {"openAPIV3Schema": schema},
                }
            ],
        },
    }


async def apply(raw: Raw, name: str, spec: dict[str, Any], manager: str) -> tuple[int, Any]:
    body = {"apiVersion": f"{GROUP}/v1", "kind": "Gadget", "metadata": {"name": name}, "spec": spec}
    status, answer, _ = await raw.call(
        "PATCH",
        f"{GADGETS}/{name}",
        raw=orjson.dumps(body),
        content_type=APPLY,
        params={"fieldManager": manager, "force": "true"},
    )
    return status, answer


async def test_an_applied_item_of_a_keyed_list_merges_into_the_stored_one(raw: Raw) -> None:
    await create_crd(raw, gadget_crd())
    try:
        # Another writer (as a defaulting webhook would) sets y in each item.
        status, body, _ = await raw.post(
            GADGETS,
            {
                "apiVersion": f"{GROUP}/v1",
                "kind": "Gadget",
                "metadata": {"name": "g"},
                "spec": {
                    "parts": [{"name": "a", "x": 1, "y": 2}],
                    "whole": [{"name": "a", "x": 1, "y": 2}],
                },
            },
        )
        assert status == 201, body
        status, body = await apply(
            raw,
            "g",
            {"parts": [{"name": "a", "x": 3}], "whole": [{"name": "a", "x": 3}]},
            "trainer",
        )
        assert status == 200, body
        assert body["spec"]["parts"] == [{"name": "a", "x": 3, "y": 2}]  # merged by key
        assert body["spec"]["whole"] == [{"name": "a", "x": 3}]  # atomic: replaced
    finally:
        await raw.delete(f"{CRDS}/{CRD_NAME}")

        async def gone() -> bool:
            return (await raw.get(f"{CRDS}/{CRD_NAME}"))[0] == 404

        await eventually(gone, "the Gadget CRD deleted")
