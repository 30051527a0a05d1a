"""Test helpers for the API server suites: raw HTTP calls and a small CRD with every feature."""

from __future__ import annotations

import asyncio
import copy
import time
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
import orjson

WIDGET_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "apiVersion": {"type": "string"},
        "kind": {"type": "string"},
        "metadata": {"type": "object"},
        "spec": {
            "type": "object",
            "required": ["size"],
            "properties": {
                "size": {"type": "integer", "minimum": 1},
                "color": {"type": "string", "enum": ["red", "blue"], "default": "red"},
                "replicas": {"type": "integer", "default": 1},
                "free": {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
            },
        },
        "status": {
            "type": "object",
            "properties": {
                "replicas": {"type": "integer"},
                "selector": {"type": "string"},
                "conditions": {
                    "type": "array",
                    "items": {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
                },
            },
        },
    },
}

WIDGET_CRD: dict[str, Any] = {
    "apiVersion": "apiextensions.k8s.io/v1",
    "kind": "CustomResourceDefinition",
    "metadata": {"name": "widgets.example.com"},
    "spec": {
        "group": "example.com",
        "scope": "Namespaced",
        "names": {
            "plural": "widgets",
            "singular": "widget",
            "kind": "Widget",
            "listKind": "WidgetList",
            "shortNames": ["wd"],
            "categories": ["all"],
        },
        "versions": [
            {
                "name": "v1",
                "served": True,
                "storage": True,
                "schema": {"openAPIV3Schema": WIDGET_SCHEMA},
                "subresources": {
                    "status": {},
                    "scale": {
                        "specReplicasPath": ".spec.replicas",
                        "statusReplicasPath": ".status.replicas",
                        "labelSelectorPath": ".status.selector",
                    },
                },
                "selectableFields": [{"jsonPath": ".spec.color"}],
                "additionalPrinterColumns": [
                    {"name": "Size", "type": "integer", "jsonPath": ".spec.size"},
                    {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
                ],
            },
            {
                "name": "v1beta1",
                "served": True,
                "storage": False,
                "schema": {"openAPIV3Schema": WIDGET_SCHEMA},
                "subresources": {"status": {}},
                # identical schemas: kube requires identical selectableFields too (it hoists
                # both to the top level; see test_selectable_fields_need_a_schema_beside_them)
                "selectableFields": [{"jsonPath": ".spec.color"}],
            },
        ],
    },
}

WIDGETS = "/apis/example.com/v1/namespaces/default/widgets"
CRDS = "/apis/apiextensions.k8s.io/v1/customresourcedefinitions"


async def eventually(
    check: Callable[[], Awaitable[bool]], what: str, *, timeout: float = 30.0
) -> None:
    """Poll ``check`` until it returns True; AssertionError naming ``what`` after ``timeout``.

    The embedded server applies a CRD, a deletion or a namespace condition before it answers;
    a real kube-apiserver does it asynchronously (its controllers), so tests that must pass on
    both wait for the state instead of reading it once."""
    deadline = time.monotonic() + timeout
    while not await check():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout} s: {what}")
        await asyncio.sleep(0.1)


async def create_crd(raw: Raw, crd: dict[str, Any]) -> dict[str, Any]:
    """POST ``crd`` (asserting 201) and wait until it is Established and every served version
    of its resource answers a list; return the created CRD."""
    status, created, _ = await raw.post(CRDS, crd)
    assert status == 201, created
    spec = crd["spec"]
    plural = spec["names"]["plural"]
    lists = [
        f"/apis/{spec['group']}/{v['name']}/{plural}"
        for v in spec["versions"]
        if v.get("served", True)
    ]

    async def served() -> bool:
        _, got, _ = await raw.get(f"{CRDS}/{crd['metadata']['name']}")
        conditions = {
            c["type"]: c["status"] for c in (got.get("status") or {}).get("conditions") or []
        }
        if conditions.get("Established") != "True":
            return False
        for path in lists:
            if (await raw.get(path))[0] != 200:
                return False
        return True

    await eventually(served, f"CRD {crd['metadata']['name']} served")
    return dict(created)


def widget(name: str, size: int = 3, **spec: Any) -> dict[str, Any]:
    """A valid Widget body."""
    return {
        "apiVersion": "example.com/v1",
        "kind": "Widget",
        "metadata": {"name": name},
        "spec": {"size": size, **spec},
    }


def widget_crd() -> dict[str, Any]:
    """A fresh copy of the Widget CRD."""
    return copy.deepcopy(WIDGET_CRD)


class Raw:
    """Minimal JSON-over-HTTP client returning (status, body, headers)."""

    def __init__(self, base: str, session: aiohttp.ClientSession) -> None:
        self.base = base
        self.session = session

    async def call(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        content_type: str = "application/json",
        params: dict[str, str] | None = None,
        raw: bytes | None = None,
        headers: dict[str, str] | None = None,
    ) -> tuple[int, Any, Any]:
        data = raw if raw is not None else (orjson.dumps(body) if body is not None else None)
        hdrs = {"Content-Type": content_type, **(headers or {})}
        async with self.session.request(
            method, self.base + path, data=data, params=params, headers=hdrs
        ) as resp:
            text = await resp.read()
            try:
                parsed: Any = orjson.loads(text) if text else None
            except orjson.JSONDecodeError:
                parsed = text.decode()
            return resp.status, parsed, resp.headers

    async def get(self, path: str, **kw: Any) -> tuple[int, Any, Any]:
        return await self.call("GET", path, **kw)

    async def post(self, path: str, body: Any, **kw: Any) -> tuple[int, Any, Any]:
        return await self.call("POST", path, body, **kw)

    async def put(self, path: str, body: Any, **kw: Any) -> tuple[int, Any, Any]:
        return await self.call("PUT", path, body, **kw)

    async def patch(
        self, path: str, body: Any, content_type: str = "application/merge-patch+json", **kw: Any
    ) -> tuple[int, Any, Any]:
        return await self.call("PATCH", path, body, content_type=content_type, **kw)

    async def delete(self, path: str, body: Any = None, **kw: Any) -> tuple[int, Any, Any]:
        return await self.call("DELETE", path, body, **kw)

    async def watch_lines(self, path: str, params: dict[str, str], count: int) -> list[Any]:
        """Read up to ``count`` watch events (stops early when the stream ends)."""
        out: list[Any] = []
        async with self.session.get(self.base + path, params=params) as resp:
            assert resp.status == 200, await resp.text()
            async for line in resp.content:
                if line.strip():
                    out.append(orjson.loads(line))
                if len(out) >= count:
                    break
        return out
