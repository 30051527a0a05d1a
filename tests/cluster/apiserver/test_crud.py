"""CRUD semantics of built-in resources through real HTTP (kubernetes-asyncio and raw calls)."""

from __future__ import annotations

import asyncio
import re

import pytest
from apiserver_helpers import Raw
from kubernetes_asyncio import client
from kubernetes_asyncio.client.rest import ApiException

# Talks HTTP only: also runs against a real kube-apiserver (--apiserver=real).
pytestmark = pytest.mark.http_api

CM = "/api/v1/namespaces/default/configmaps"


async def test_create_get_update_delete_with_kubernetes_asyncio(
    api_client: client.ApiClient,
) -> None:
    core = client.CoreV1Api(api_client)
    created = await core.create_namespaced_config_map(
        "default", {"metadata": {"name": "cfg", "labels": {"a": "1"}}, "data": {"k": "v"}}
    )
    assert created.metadata.uid
    assert created.metadata.generation is None  # a ConfigMap has no spec to track
    assert re.fullmatch(
        r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ",
        created.metadata.creation_timestamp.strftime("%Y-%m-%dT%H:%M:%SZ"),
    )
    got = await core.read_namespaced_config_map("cfg", "default")
    assert got.data == {"k": "v"}
    got.data["k"] = "w"
    updated = await core.replace_namespaced_config_map("cfg", "default", got)
    assert int(updated.metadata.resource_version) > int(created.metadata.resource_version)
    with pytest.raises(ApiException) as exc:
        got.data["k"] = "stale"
        await core.replace_namespaced_config_map("cfg", "default", got)
    assert exc.value.status == 409
    assert "the object has been modified" in exc.value.body
    await core.delete_namespaced_config_map("cfg", "default")
    with pytest.raises(ApiException) as exc:
        await core.read_namespaced_config_map("cfg", "default")
    assert exc.value.status == 404
    assert 'configmaps \\"cfg\\" not found' in exc.value.body


async def test_resource_versions_come_from_one_counter(raw: Raw) -> None:
    versions = []
    for i in range(3):
        status, body, _ = await raw.post(CM, {"metadata": {"name": f"c{i}"}})
        assert status == 201
        versions.append(int(body["metadata"]["resourceVersion"]))
        status, body, _ = await raw.post(
            "/api/v1/namespaces/default/secrets", {"metadata": {"name": f"s{i}"}}
        )
        versions.append(int(body["metadata"]["resourceVersion"]))
    assert versions == sorted(versions) and len(set(versions)) == len(versions)
    status, body, _ = await raw.get(CM)
    assert body["kind"] == "ConfigMapList"
    assert int(body["metadata"]["resourceVersion"]) >= versions[-1]


async def test_generate_name_and_name_validation(raw: Raw) -> None:
    status, body, _ = await raw.post(CM, {"metadata": {"generateName": "job-"}})
    assert status == 201
    assert re.fullmatch(r"job-[a-z0-9]{5}", body["metadata"]["name"])
    status, body, _ = await raw.post(CM, {"metadata": {"name": "Bad_Name"}})
    assert status == 422
    assert body["reason"] == "Invalid"
    assert body["details"]["causes"][0]["field"] == "metadata.name"
    assert body["message"].startswith(
        'ConfigMap "Bad_Name" is invalid: metadata.name: Invalid value'
    )
    status, body, _ = await raw.post(CM, {"metadata": {}})
    assert status == 422
    assert "name or generateName is required" in body["message"]


async def test_already_exists_and_unknown_namespace(raw: Raw) -> None:
    assert (await raw.post(CM, {"metadata": {"name": "dup"}}))[0] == 201
    status, body, _ = await raw.post(CM, {"metadata": {"name": "dup"}})
    assert (status, body["reason"]) == (409, "AlreadyExists")
    assert body["message"] == 'configmaps "dup" already exists'
    status, body, _ = await raw.post(
        "/api/v1/namespaces/missing/configmaps", {"metadata": {"name": "x"}}
    )
    assert status == 404
    assert body["message"] == 'namespaces "missing" not found'


async def test_default_namespaces_exist(raw: Raw) -> None:
    _, body, _ = await raw.get("/api/v1/namespaces")
    names = {n["metadata"]["name"] for n in body["items"]}
    assert {"default", "kube-system", "kube-public", "kube-node-lease"} <= names
    assert all(n["status"]["phase"] == "Active" for n in body["items"])


async def test_terminating_namespace_refuses_creates(raw: Raw) -> None:
    assert (await raw.post("/api/v1/namespaces", {"metadata": {"name": "doomed"}}))[0] == 201
    held = {"metadata": {"name": "held", "finalizers": ["example.com/hold"]}}
    assert (await raw.post("/api/v1/namespaces/doomed/configmaps", held))[0] == 201
    status, body, _ = await raw.delete("/api/v1/namespaces/doomed")
    assert status == 200
    assert body["status"]["phase"] == "Terminating"
    assert body["metadata"]["deletionTimestamp"]
    status, body, _ = await raw.post(
        "/api/v1/namespaces/doomed/configmaps", {"metadata": {"name": "x"}}
    )
    assert (status, body["reason"]) == (403, "Forbidden")
    assert "because it is being terminated" in body["message"]
    # release the content; then finalize (what the namespace controller does once it is empty)
    await raw.patch("/api/v1/namespaces/doomed/configmaps/held", {"metadata": {"finalizers": None}})
    for _ in range(50):
        status, ns, _ = await raw.get("/api/v1/namespaces/doomed")
        if status == 404:
            break
        ns["spec"]["finalizers"] = []
        await raw.put("/api/v1/namespaces/doomed/finalize", ns)
        await asyncio.sleep(0.05)
    assert (await raw.get("/api/v1/namespaces/doomed"))[0] == 404


async def test_pod_and_service_defaults(raw: Raw) -> None:
    pod = {
        "metadata": {"name": "p"},
        "spec": {"containers": [{"name": "c", "image": "busybox"}]},
        "status": {"phase": "Running"},
    }
    status, body, _ = await raw.post("/api/v1/namespaces/default/pods", pod)
    assert status == 201
    assert body["status"]["phase"] == "Pending"  # status is not settable on create
    assert body["status"]["qosClass"] == "BestEffort"
    spec = body["spec"]
    assert spec["restartPolicy"] == "Always"
    assert spec["schedulerName"] == "default-scheduler"
    assert spec["terminationGracePeriodSeconds"] == 30
    assert spec["dnsPolicy"] == "ClusterFirst"
    assert spec["serviceAccountName"] == "default"
    ips = set()
    for name in ("a", "b"):
        status, svc, _ = await raw.post(
            "/api/v1/namespaces/default/services",
            {"metadata": {"name": name}, "spec": {"ports": [{"port": 80}]}},
        )
        assert status == 201
        assert svc["spec"]["type"] == "ClusterIP"
        assert svc["spec"]["clusterIP"].startswith("10.")
        assert svc["spec"]["ports"][0]["targetPort"] == 80
        ips.add(svc["spec"]["clusterIP"])
    assert len(ips) == 2
    status, svc, _ = await raw.post(
        "/api/v1/namespaces/default/services",
        {"metadata": {"name": "headless"}, "spec": {"clusterIP": "None"}},
    )
    assert svc["spec"]["clusterIP"] == "None"


DEPLOYMENTS = "/apis/apps/v1/namespaces/default/deployments"


def deployment(name: str, replicas: int = 1) -> dict[str, object]:
    """The smallest Deployment kube accepts."""
    return {
        "metadata": {"name": name},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {"containers": [{"name": "c", "image": "busybox"}]},
            },
        },
    }


async def test_generation_bumps_only_on_spec_changes(raw: Raw) -> None:
    _, body, _ = await raw.post(DEPLOYMENTS, deployment("d"))
    assert body["metadata"]["generation"] == 1
    _, body, _ = await raw.patch(f"{DEPLOYMENTS}/d", {"metadata": {"labels": {"x": "y"}}})
    assert body["metadata"]["generation"] == 1
    _, body, _ = await raw.patch(f"{DEPLOYMENTS}/d", {"spec": {"replicas": 2}})
    assert body["metadata"]["generation"] == 2
    _, body, _ = await raw.patch(f"{DEPLOYMENTS}/d/status", {"status": {"replicas": 2}})
    assert body["metadata"]["generation"] == 2
    assert body["status"]["replicas"] == 2


async def test_generation_only_where_kube_tracks_it(raw: Raw) -> None:
    """Pods (and workloads, custom resources) get generation 1; ConfigMaps never get one, keep
    a client-sent one unchanged, and a first graceful deletion bumps only a set generation."""
    pod = {"metadata": {"name": "g"}, "spec": {"containers": [{"name": "c", "image": "x"}]}}
    _, body, _ = await raw.post("/api/v1/namespaces/default/pods", pod)
    assert body["metadata"]["generation"] == 1
    held = {"metadata": {"name": "plain", "finalizers": ["example.com/hold"]}, "data": {"a": "1"}}
    status, body, _ = await raw.post(CM, held)
    assert status == 201 and "generation" not in body["metadata"]
    _, body, _ = await raw.patch(f"{CM}/plain", {"data": {"a": "2"}})
    assert "generation" not in body["metadata"]
    status, body, _ = await raw.delete(f"{CM}/plain")
    assert status == 200 and body["metadata"]["deletionTimestamp"]
    assert "generation" not in body["metadata"]
    given = {"metadata": {"name": "given", "generation": 5, "finalizers": ["example.com/hold"]}}
    _, body, _ = await raw.post(CM, given)
    assert body["metadata"]["generation"] == 5
    _, body, _ = await raw.put(f"{CM}/given", {**body, "data": {"a": "1"}})
    assert body["metadata"]["generation"] == 5
    _, body, _ = await raw.delete(f"{CM}/given")
    assert body["metadata"]["generation"] == 6
    for name in ("plain", "given"):
        await raw.patch(f"{CM}/{name}", {"metadata": {"finalizers": None}})


async def test_deployments_are_validated_like_kube(raw: Raw) -> None:
    status, body, _ = await raw.post(DEPLOYMENTS, {"metadata": {"name": "d"}, "spec": {}})
    assert status == 422
    assert body["message"] == (
        'Deployment.apps "d" is invalid: [spec.selector: Required value, '
        "spec.template.metadata.labels: Invalid value: null: `selector` does not match "
        "template `labels`, spec.template.spec.containers: Required value]"
    )
    mismatched = deployment("m")
    mismatched["spec"]["template"]["metadata"]["labels"] = {"app": "other"}  # type: ignore[index]
    status, body, _ = await raw.post(DEPLOYMENTS, mismatched)
    assert status == 422
    assert [c["field"] for c in body["details"]["causes"]] == ["spec.template.metadata.labels"]
    assert body["details"]["causes"][0]["message"] == (
        'Invalid value: {"app":"other"}: `selector` does not match template `labels`'
    )
    assert (await raw.post(DEPLOYMENTS, deployment("ok")))[0] == 201
    status, body, _ = await raw.patch(
        f"{DEPLOYMENTS}/ok", {"spec": {"template": {"spec": {"containers": None}}}}
    )
    assert status == 422
    assert [c["field"] for c in body["details"]["causes"]] == ["spec.template.spec.containers"]


async def test_noop_update_keeps_resource_version(raw: Raw) -> None:
    _, body, _ = await raw.post(CM, {"metadata": {"name": "same"}, "data": {"a": "1"}})
    rv = body["metadata"]["resourceVersion"]
    status, again, _ = await raw.put(f"{CM}/same", body)
    assert status == 200
    assert again["metadata"]["resourceVersion"] == rv


async def test_put_without_resource_version_is_unconditional_for_builtins(raw: Raw) -> None:
    await raw.post(CM, {"metadata": {"name": "u"}, "data": {"a": "1"}})
    status, body, _ = await raw.put(f"{CM}/u", {"metadata": {"name": "u"}, "data": {"a": "2"}})
    assert status == 200 and body["data"] == {"a": "2"}
    status, body, _ = await raw.put(f"{CM}/u", {"metadata": {"name": "other"}})
    assert status == 400
    assert "does not match the name on the URL" in body["message"]


async def test_patch_types_on_builtins(raw: Raw) -> None:
    pods = "/api/v1/namespaces/default/pods"
    pod = {
        "metadata": {"name": "sp"},
        "spec": {
            "containers": [
                {"name": "a", "image": "x:1", "env": [{"name": "E1", "value": "1"}]},
                {"name": "b", "image": "y:1"},
            ]
        },
    }
    assert (await raw.post(pods, pod))[0] == 201
    status, body, _ = await raw.patch(
        f"{pods}/sp",
        {"spec": {"containers": [{"name": "a", "image": "x:2"}]}},
        "application/strategic-merge-patch+json",
    )
    assert status == 200
    containers = {c["name"]: c for c in body["spec"]["containers"]}
    assert containers["a"]["image"] == "x:2"
    assert containers["a"]["env"] == [{"name": "E1", "value": "1"}]
    assert "b" in containers  # merged by name, not replaced
    status, body, _ = await raw.patch(
        f"{pods}/sp",
        [{"op": "add", "path": "/metadata/labels", "value": {"l": "v"}}],
        "application/json-patch+json",
    )
    assert status == 200 and body["metadata"]["labels"] == {"l": "v"}
    status, body, _ = await raw.patch(f"{pods}/sp", {"x": 1}, "text/plain")
    assert status == 415


async def test_dry_run_does_not_persist(raw: Raw) -> None:
    status, body, _ = await raw.post(CM, {"metadata": {"name": "dry"}}, params={"dryRun": "All"})
    assert status == 201 and body["metadata"]["name"] == "dry"
    assert (await raw.get(f"{CM}/dry"))[0] == 404
    status, body, _ = await raw.post(CM, {"metadata": {"name": "dry"}}, params={"dryRun": "Some"})
    assert status == 422


async def test_booleans_parse_like_kube(raw: Raw) -> None:
    """A present boolean is false only for ``0``/``false`` (any case), true otherwise, the
    empty value included (kube's query conversion, not strconv.ParseBool: ``f`` is true)."""
    await raw.post(CM, {"metadata": {"name": "b"}})
    for value in ("true", "True", "1", "t", "TRUE", "yes", "f", "F", "no", ""):
        events = await raw.watch_lines(CM, {"watch": value, "timeoutSeconds": "1"}, 1)
        assert events and events[0]["type"] == "ADDED", value
    for value in ("false", "False", "FaLsE", "0"):
        status, body, _ = await raw.get(CM, params={"watch": value, "timeoutSeconds": "1"})
        assert status == 200 and body["kind"] == "ConfigMapList", value
    initial = {"watch": "1", "timeoutSeconds": "1", "resourceVersionMatch": "NotOlderThan"}
    events = await raw.watch_lines(
        CM, {**initial, "sendInitialEvents": "yes", "allowWatchBookmarks": "on"}, 2
    )
    assert [e["type"] for e in events] == ["ADDED", "BOOKMARK"]
    annotations = events[1]["object"]["metadata"]["annotations"]
    assert annotations == {"k8s.io/initial-events-end": "true"}
    # sendInitialEvents=FALSE: no synthetic ADDED; the watch only ends at its timeout
    events = await raw.watch_lines(
        CM, {**initial, "sendInitialEvents": "FALSE", "allowWatchBookmarks": "0"}, 1
    )
    assert events == []


async def test_unknown_paths_and_verbs(raw: Raw) -> None:
    """Outside /api and the served /apis/<group> trees: Go's text/plain 404; inside a served
    group (or the core group) an unknown version or resource: a JSON Status 404."""
    for path in ("/apis/nope.io/v1/things", "/apis/nope.io", "/nothing/here"):
        status, body, headers = await raw.get(path)
        assert status == 404, path
        assert body == "404 page not found\n", path
        assert headers["Content-Type"].startswith("text/plain"), path
    status, body, _ = await raw.post("/apis/nope.io/v1/things", {})
    assert (status, body) == (404, "404 page not found\n")
    for path in ("/apis/apps/v9", "/apis/apps/v1/nothings", "/api/v2/pods", "/api/v1/nothings"):
        status, body, headers = await raw.get(path)
        assert status == 404, path
        assert headers["Content-Type"] == "application/json", path
        assert (body["kind"], body["reason"]) == ("Status", "NotFound"), path
        assert body["message"] == "the server could not find the requested resource"
    status, body, _ = await raw.put(CM, {"metadata": {"name": "x"}})
    assert (status, body["reason"]) == (405, "MethodNotAllowed")


async def test_sync_kubernetes_client_in_a_thread(cluster: object) -> None:
    import kubernetes

    kubeconfig = cluster.kubeconfig_path  # type: ignore[attr-defined]

    def work() -> list[str]:
        api_client = kubernetes.config.new_client_from_config(config_file=kubeconfig)
        core = kubernetes.client.CoreV1Api(api_client)
        core.create_namespaced_config_map(
            "default", {"metadata": {"name": "sync", "labels": {"s": "1"}}}
        )
        items = core.list_namespaced_config_map("default", label_selector="s=1").items
        return [i.metadata.name for i in items]

    assert await asyncio.to_thread(work) == ["sync"]
