"""Discovery and OpenAPI documents: what kubectl reads before it does anything.

``/version``, ``/api``, ``/api/v1``, ``/apis``, ``/apis/{g}``, ``/apis/{g}/{v}`` (plain
APIGroupList: kubectl falls back to it from aggregated discovery) and a minimal ``/openapi/v3``:
an index plus one document per group/version whose item paths carry POST/PUT/PATCH operations
with the ``fieldValidation`` query parameter and ``x-kubernetes-group-version-kind``, so kubectl
apply (default validation) uses server-side Strict field validation. CRD schemas are included.
Documents are cached per registry generation.
"""

from __future__ import annotations

import hashlib
from typing import Any

import orjson

from .resources import ResourceInfo, ResourceRegistry

__all__ = ["Discovery"]

_SUB_VERBS = {
    "status": ("get", "patch", "update"),
    "scale": ("get", "patch", "update"),
    "log": ("get",),
    "binding": ("create",),
    "finalize": ("update",),
}


def _gvk(info: ResourceInfo) -> dict[str, str]:
    return {"group": info.group, "version": info.version, "kind": info.kind}


class Discovery:
    """Builds (and caches) the discovery and OpenAPI documents from the registry."""

    def __init__(self, registry: ResourceRegistry, *, git_version: str) -> None:
        self.registry = registry
        self.git_version = git_version
        self._cache: dict[str, bytes] = {}
        self._cache_generation = -1

    def _cached(self, key: str, build: Any) -> bytes:
        if self._cache_generation != self.registry.generation:
            self._cache.clear()
            self._cache_generation = self.registry.generation
        data = self._cache.get(key)
        if data is None:
            data = self._cache[key] = orjson.dumps(build())
        return data

    def version(self) -> dict[str, str]:
        """The ``/version`` document."""
        core = self.git_version.lstrip("v").split("-")[0].split(".")
        return {
            "major": core[0],
            "minor": core[1] if len(core) > 1 else "0",
            "gitVersion": self.git_version,
            "gitCommit": "0000000000000000000000000000000000000000",
            "gitTreeState": "clean",
            "buildDate": "2026-01-01T00:00:00Z",
            "goVersion": "go1.24.0",
            "compiler": "gc",
            "platform": "linux/amd64",
        }

    def api_versions(self, server_address: str) -> bytes:
        """``/api``."""
        return orjson.dumps(
            {
                "kind": "APIVersions",
                "versions": ["v1"],
                "serverAddressByClientCIDRs": [
                    {"clientCIDR": "0.0.0.0/0", "serverAddress": server_address}
                ],
            }
        )

    def _group(self, group: str, versions: list[str]) -> dict[str, Any]:
        gvs = [{"groupVersion": f"{group}/{v}", "version": v} for v in versions]
        return {"name": group, "versions": gvs, "preferredVersion": gvs[0]}

    def group_list(self) -> bytes:
        """``/apis``: every non-core group, preferred version first."""
        return self._cached(
            "/apis",
            lambda: {
                "kind": "APIGroupList",
                "apiVersion": "v1",
                "groups": [self._group(g, v) for g, v in self.registry.groups() if g],
            },
        )

    def group(self, group: str) -> bytes | None:
        """``/apis/{group}`` or None when not served."""
        for g, versions in self.registry.groups():
            if g == group and g:
                doc = {"kind": "APIGroup", "apiVersion": "v1", **self._group(g, versions)}
                return self._cached(f"/apis/{group}", lambda doc=doc: doc)
        return None

    def resource_list(self, group: str, version: str) -> bytes | None:
        """``/api/v1`` or ``/apis/{g}/{v}`` (APIResourceList), None when not served."""
        infos = self.registry.resources(group, version)
        if not infos:
            return None
        gv = f"{group}/{version}" if group else version
        return self._cached(f"rl:{gv}", lambda: self._resource_list(gv, infos))

    def _resource_list(self, gv: str, infos: list[ResourceInfo]) -> dict[str, Any]:
        resources: list[dict[str, Any]] = []
        for info in infos:
            entry: dict[str, Any] = {
                "name": info.plural,
                "singularName": info.singular,
                "namespaced": info.namespaced,
                "kind": info.kind,
                "verbs": list(info.verbs),
                "storageVersionHash": hashlib.sha256(
                    f"{info.group}/{info.storage_version}/{info.kind}".encode()
                ).hexdigest()[:12],
            }
            if info.short_names:
                entry["shortNames"] = list(info.short_names)
            if info.categories:
                entry["categories"] = list(info.categories)
            resources.append(entry)
            for sub in sorted(info.subresources):
                sub_entry: dict[str, Any] = {
                    "name": f"{info.plural}/{sub}",
                    "singularName": "",
                    "namespaced": info.namespaced,
                    "kind": info.kind,
                    "verbs": list(_SUB_VERBS.get(sub, ("get",))),
                }
                if sub == "scale":
                    sub_entry.update(kind="Scale", group="autoscaling", version="v1")
                elif sub == "binding":
                    sub_entry["kind"] = "Binding"
                resources.append(sub_entry)
        return {
            "kind": "APIResourceList",
            "apiVersion": "v1",
            "groupVersion": gv,
            "resources": resources,
        }

    # -- OpenAPI v3 --------------------------------------------------------------------------

    def openapi_index(self) -> bytes:
        """``/openapi/v3``: one entry per served group/version."""

        def build() -> dict[str, Any]:
            paths: dict[str, Any] = {}
            for group, versions in self.registry.groups():
                for version in versions:
                    rel = f"api/{version}" if not group else f"apis/{group}/{version}"
                    digest = hashlib.sha256(self.openapi_doc(group, version) or b"").hexdigest()
                    paths[rel] = {"serverRelativeURL": f"/openapi/v3/{rel}?hash={digest.upper()}"}
            return {"paths": paths}

        return self._cached("/openapi/v3", build)

    def openapi_doc(self, group: str, version: str) -> bytes | None:
        """The per-group/version OpenAPI v3 document, None when not served."""
        infos = self.registry.resources(group, version)
        if not infos:
            return None
        return self._cached(f"oa:{group}/{version}", lambda: self._openapi(group, version, infos))

    def _openapi(self, group: str, version: str, infos: list[ResourceInfo]) -> dict[str, Any]:
        prefix = f"/api/{version}" if not group else f"/apis/{group}/{version}"
        query_params = [
            {"name": n, "in": "query", "schema": {"type": "string", "uniqueItems": True}}
            for n in ("dryRun", "fieldManager", "fieldValidation")
        ]
        paths: dict[str, Any] = {}
        schemas: dict[str, Any] = {}
        group_id = ".".join(reversed(group.split("."))) if group else "io.k8s.api.core"
        for info in infos:
            schema_name = f"{group_id}.{version}.{info.kind}"
            schema: dict[str, Any] = dict(info.openapi_schema or {"type": "object"})
            if info.openapi_schema is None:
                schema["x-kubernetes-preserve-unknown-fields"] = True
            schema["x-kubernetes-group-version-kind"] = [_gvk(info)]
            schemas[schema_name] = schema
            ref = {"$ref": f"#/components/schemas/{schema_name}"}
            body = {"content": {"application/json": {"schema": ref}}, "required": True}

            def op(
                action: str, info: ResourceInfo = info, body: Any = body, ref: Any = ref
            ) -> dict[str, Any]:
                return {
                    "operationId": f"{action}{info.kind}",
                    "parameters": query_params,
                    "requestBody": body,
                    "responses": {"200": {"content": {"application/json": {"schema": ref}}}},
                    "x-kubernetes-action": action,
                    "x-kubernetes-group-version-kind": _gvk(info),
                }

            base = (
                f"{prefix}/namespaces/{{namespace}}/{info.plural}"
                if info.namespaced
                else (f"{prefix}/{info.plural}")
            )
            paths[base] = {"post": op("post")}
            paths[f"{base}/{{name}}"] = {"put": op("put"), "patch": op("patch")}
        return {
            "openapi": "3.0.0",
            "info": {"title": "Kubernetes", "version": self.git_version},
            "paths": paths,
            "components": {"schemas": schemas},
        }
