"""CustomResourceDefinitions and custom resources: registration, schema, subresources, patches."""

from __future__ import annotations

import pytest
from apiserver_helpers import CRDS, WIDGETS, Raw, create_crd, eventually, widget, widget_crd
from kubernetes_asyncio import client
from kubernetes_asyncio.client.rest import ApiException

# Talks HTTP only: also runs against a real kube-apiserver (--apiserver=real).
pytestmark = pytest.mark.http_api


@pytest.fixture
async def widgets(raw: Raw) -> Raw:
    await create_crd(raw, widget_crd())
    return raw


async def test_crd_is_established_and_discoverable(widgets: Raw) -> None:
    _, crd, _ = await widgets.get(f"{CRDS}/widgets.example.com")
    conditions = {c["type"]: c["status"] for c in crd["status"]["conditions"]}
    assert conditions == {"NamesAccepted": "True", "Established": "True"}
    _, groups, _ = await widgets.get("/apis")
    group = next(g for g in groups["groups"] if g["name"] == "example.com")
    assert group["preferredVersion"]["version"] == "v1"
    assert [v["version"] for v in group["versions"]] == ["v1", "v1beta1"]
    _, resources, _ = await widgets.get("/apis/example.com/v1")
    by_name = {r["name"]: r for r in resources["resources"]}
    assert by_name["widgets"]["shortNames"] == ["wd"]
    assert by_name["widgets"]["namespaced"] is True
    assert "watch" in by_name["widgets"]["verbs"]
    assert by_name["widgets/status"]["verbs"] == ["get", "patch", "update"]
    assert by_name["widgets/scale"]["kind"] == "Scale"

    async def published() -> bool:
        _, index, _ = await widgets.get("/openapi/v3")
        return "apis/example.com/v1" in index["paths"]

    await eventually(published, "OpenAPI v3 lists apis/example.com/v1")


async def test_invalid_crd_is_refused(raw: Raw) -> None:
    crd = widget_crd()
    crd["metadata"]["name"] = "wrong.example.com"
    status, body, _ = await raw.post(CRDS, crd)
    assert status == 422
    assert body["details"]["causes"][0]["field"] == "metadata.name"


async def test_invalid_custom_resource_names_the_field(widgets: Raw) -> None:
    bad = widget("w", size=0)
    bad["spec"]["color"] = "green"
    status, body, _ = await widgets.post(WIDGETS, bad)
    assert status == 422
    assert body["reason"] == "Invalid"
    fields = {c["field"] for c in body["details"]["causes"]}
    assert fields == {"spec.size", "spec.color"}
    assert body["message"].startswith('Widget.example.com "w" is invalid: [')
    status, body, _ = await widgets.post(WIDGETS, {**widget("w2"), "spec": {}})
    assert status == 422
    assert body["details"]["causes"][0]["field"] == "spec.size"


async def test_pruning_defaults_and_field_validation(widgets: Raw) -> None:
    obj = widget("p", extra="x", free={"anything": {"goes": 1}})
    status, body, headers = await widgets.post(WIDGETS, obj)
    assert status == 201
    assert "extra" not in body["spec"]
    assert body["spec"]["free"] == {"anything": {"goes": 1}}
    assert body["spec"]["color"] == "red" and body["spec"]["replicas"] == 1
    assert headers.get("Warning") == '299 - "unknown field \\"spec.extra\\""'
    status, body, _ = await widgets.post(
        WIDGETS, widget("s", extra="x"), params={"fieldValidation": "Strict"}
    )
    assert status == 400
    assert body["message"] == (
        'Widget in version "v1" cannot be handled as a Widget: '
        'strict decoding error: unknown field "spec.extra"'
    )
    status, body, headers = await widgets.post(
        WIDGETS, widget("i", extra="x"), params={"fieldValidation": "Ignore"}
    )
    assert status == 201 and "Warning" not in headers
    status, body, headers = await widgets.post(WIDGETS, widget("two", a=1, b=2))
    assert status == 201
    assert headers.getall("Warning") == [
        '299 - "unknown field \\"spec.a\\""',
        '299 - "unknown field \\"spec.b\\""',
    ]


async def test_update_requires_resource_version_for_custom_resources(widgets: Raw) -> None:
    _, obj, _ = await widgets.post(WIDGETS, widget("rv"))
    stale = dict(obj)
    del obj["metadata"]["resourceVersion"]
    status, body, _ = await widgets.put(f"{WIDGETS}/rv", obj)
    assert status == 422
    assert body["details"]["causes"][0]["field"] == "metadata.resourceVersion"
    assert "must be specified for an update" in body["message"]
    stale["metadata"] = {**stale["metadata"], "resourceVersion": "1"}
    status, body, _ = await widgets.put(f"{WIDGETS}/rv", stale)
    assert (status, body["reason"]) == (409, "Conflict")


async def test_status_subresource_separates_spec_and_status(widgets: Raw) -> None:
    _, obj, _ = await widgets.post(WIDGETS, {**widget("st"), "status": {"replicas": 9}})
    assert "status" not in obj  # create drops status when the subresource exists
    obj["status"] = {"replicas": 2}
    obj["spec"]["size"] = 5
    _, main, _ = await widgets.put(f"{WIDGETS}/st", obj)
    assert "status" not in main and main["spec"]["size"] == 5
    assert main["metadata"]["generation"] == 2
    main["status"] = {"replicas": 2}
    main["spec"]["size"] = 7
    _, st, _ = await widgets.put(f"{WIDGETS}/st/status", main)
    assert st["status"] == {"replicas": 2}
    assert st["spec"]["size"] == 5  # spec ignored by /status
    assert st["metadata"]["generation"] == 2
    _, patched, _ = await widgets.patch(f"{WIDGETS}/st/status", {"status": {"replicas": 3}})
    assert patched["status"]["replicas"] == 3 and patched["metadata"]["generation"] == 2
    status, body, _ = await widgets.put(
        f"{WIDGETS}/st/status", {**patched, "status": {"replicas": "x"}}
    )
    assert status == 422 and body["details"]["causes"][0]["field"] == "status.replicas"


async def test_scale_subresource(widgets: Raw) -> None:
    await widgets.post(WIDGETS, widget("sc", replicas=2))
    await widgets.patch(f"{WIDGETS}/sc/status", {"status": {"replicas": 2, "selector": "a=b"}})
    status, scale, _ = await widgets.get(f"{WIDGETS}/sc/scale")
    assert status == 200
    assert scale["kind"] == "Scale" and scale["apiVersion"] == "autoscaling/v1"
    assert scale["spec"] == {"replicas": 2}
    assert scale["status"] == {"replicas": 2, "selector": "a=b"}
    scale["spec"]["replicas"] = 4
    status, scale, _ = await widgets.put(f"{WIDGETS}/sc/scale", scale)
    assert status == 200 and scale["spec"]["replicas"] == 4
    _, obj, _ = await widgets.get(f"{WIDGETS}/sc")
    assert obj["spec"]["replicas"] == 4
    status, scale, _ = await widgets.patch(f"{WIDGETS}/sc/scale", {"spec": {"replicas": 1}})
    assert status == 200 and scale["spec"]["replicas"] == 1


async def test_patches_on_custom_resources(widgets: Raw) -> None:
    await widgets.post(WIDGETS, widget("pt"))
    status, body, _ = await widgets.patch(f"{WIDGETS}/pt", {"spec": {"size": 4}})
    assert status == 200 and body["spec"]["size"] == 4
    status, body, _ = await widgets.patch(
        f"{WIDGETS}/pt",
        [{"op": "replace", "path": "/spec/size", "value": 6}],
        "application/json-patch+json",
    )
    assert status == 200 and body["spec"]["size"] == 6
    status, body, _ = await widgets.patch(
        f"{WIDGETS}/pt", {"spec": {"size": 1}}, "application/strategic-merge-patch+json"
    )
    assert status == 415
    status, body, _ = await widgets.patch(f"{WIDGETS}/pt", {"spec": {"size": -1}})
    assert status == 422


async def test_server_side_apply_creates_then_updates(widgets: Raw) -> None:
    manifest = (
        "apiVersion: example.com/v1\nkind: Widget\nmetadata:\n  name: ssa\nspec:\n  size: 2\n"
    )
    path = f"{WIDGETS}/ssa"
    params = {"fieldManager": "kubectl", "force": "false"}
    status, body, _ = await widgets.call(
        "PATCH",
        path,
        raw=manifest.encode(),
        content_type="application/apply-patch+yaml",
        params=params,
    )
    assert status == 201, body
    assert body["metadata"]["managedFields"][0]["manager"] == "kubectl"
    status, body, _ = await widgets.call(
        "PATCH",
        path,
        raw=manifest.replace("size: 2", "size: 5").encode(),
        content_type="application/apply-patch+yaml",
        params=params,
    )
    assert status == 200 and body["spec"]["size"] == 5
    status, body, _ = await widgets.call(
        "PATCH", path, raw=manifest.encode(), content_type="application/apply-patch+yaml"
    )
    assert status == 422  # fieldManager is required


async def test_served_versions_share_storage(widgets: Raw) -> None:
    await widgets.post(WIDGETS, widget("mv"))
    status, body, _ = await widgets.get("/apis/example.com/v1beta1/namespaces/default/widgets/mv")
    assert status == 200
    assert body["apiVersion"] == "example.com/v1beta1"
    assert body["spec"]["size"] == 3
    beta = "/apis/example.com/v1beta1/namespaces/default/widgets"
    beta_obj = {**widget("viabeta"), "apiVersion": "example.com/v1beta1"}
    status, body, _ = await widgets.post(beta, beta_obj)
    assert status == 201 and body["apiVersion"] == "example.com/v1beta1"
    _, body, _ = await widgets.get(f"{WIDGETS}/viabeta")
    assert body["apiVersion"] == "example.com/v1"
    events = await widgets.watch_lines(WIDGETS, {"watch": "true", "timeoutSeconds": "1"}, 2)
    assert {e["object"]["apiVersion"] for e in events} == {"example.com/v1"}
    events = await widgets.watch_lines(beta, {"watch": "true", "timeoutSeconds": "1"}, 2)
    assert {e["object"]["apiVersion"] for e in events} == {"example.com/v1beta1"}


async def test_selectable_fields(widgets: Raw) -> None:
    await widgets.post(WIDGETS, widget("red1"))
    await widgets.post(WIDGETS, widget("blue1", color="blue"))
    _, body, _ = await widgets.get(WIDGETS, params={"fieldSelector": "spec.color=blue"})
    assert [i["metadata"]["name"] for i in body["items"]] == ["blue1"]
    status, body, _ = await widgets.get(WIDGETS, params={"fieldSelector": "spec.size=3"})
    assert status == 400
    assert "field label not supported: spec.size" in body["message"]


async def test_selectable_fields_need_a_schema_beside_them(raw: Raw) -> None:
    """kube hoists per-version fields identical in every version to the top level; the
    selectableFields left without a schema beside them are refused (kube's messages)."""
    differing_fields = widget_crd()  # identical schemas, selectableFields only on v1
    del differing_fields["spec"]["versions"][1]["selectableFields"]
    status, body, _ = await raw.post(CRDS, differing_fields)
    assert status == 422, body
    assert body["message"] == (
        'CustomResourceDefinition.apiextensions.k8s.io "widgets.example.com" is invalid: '
        'spec.versions[0].selectableFields: Invalid value: "": may only be set when '
        "`version.schema.openAPIV3Schema` is not included"
    )
    assert body["details"]["causes"][0]["field"] == "spec.versions[0].selectableFields"
    differing_schemas = widget_crd()  # identical selectableFields, schemas differ
    for version in differing_schemas["spec"]["versions"]:
        schema = version["schema"]["openAPIV3Schema"]
        version["schema"]["openAPIV3Schema"] = {**schema, "description": version["name"]}
    status, body, _ = await raw.post(CRDS, differing_schemas)
    assert status == 422, body
    assert body["message"].endswith(
        'spec.selectableFields: Invalid value: "": may only be set when validations.schema '
        "is included"
    )
    both_differ = differing_schemas  # per-version schemas beside per-version fields: valid
    del both_differ["spec"]["versions"][1]["selectableFields"]
    status, body, _ = await raw.post(CRDS, both_differ)
    assert status == 201, body


async def test_deleting_the_crd_deletes_its_resources(widgets: Raw) -> None:
    await widgets.post(WIDGETS, widget("gone"))
    status, _, _ = await widgets.delete(f"{CRDS}/widgets.example.com")
    assert status == 200

    async def gone() -> bool:
        crd_status = (await widgets.get(f"{CRDS}/widgets.example.com"))[0]
        return crd_status == 404 and (await widgets.get(WIDGETS))[0] == 404

    await eventually(gone, "the CRD and its resource gone")
    await create_crd(widgets, widget_crd())
    _, body, _ = await widgets.get(WIDGETS)
    assert body["items"] == []


async def test_custom_objects_api(api_client: client.ApiClient, widgets: Raw) -> None:
    api = client.CustomObjectsApi(api_client)
    created = await api.create_namespaced_custom_object(
        "example.com", "v1", "default", "widgets", widget("co")
    )
    assert created["metadata"]["generation"] == 1
    listed = await api.list_namespaced_custom_object("example.com", "v1", "default", "widgets")
    assert [i["metadata"]["name"] for i in listed["items"]] == ["co"]
    with pytest.raises(ApiException) as exc:
        await api.create_namespaced_custom_object(
            "example.com", "v1", "default", "widgets", widget("bad", size="big")
        )
    assert exc.value.status == 422
    result = await api.delete_namespaced_custom_object(
        "example.com", "v1", "default", "widgets", "co"
    )
    assert result["status"] == "Success" and result["details"]["name"] == "co"
