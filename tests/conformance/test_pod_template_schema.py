"""The vendored PodTemplateSpec schema of the CRDs (tools/deploy/pod_template_schema.py).

The conversion's rules run in the default suite on a small hand-written OpenAPI document; the
conformance tier regenerates the vendored file from the OpenAPI document of its own Kubernetes
release (downloaded by tools/conformance/build.sh) and fails when the file in the repository
differs.
"""

from __future__ import annotations

from typing import Any

import pytest
from conformance.controlplane import DEFAULT_KUBERNETES_VERSION
from toolmodules import load_tool

gen = load_tool("tools/deploy/pod_template_schema.py")

_REF = "#/components/schemas/"


def _document(**extra_pod_spec_properties: Any) -> dict[str, Any]:
    port = {
        "type": "object",
        "required": ["containerPort"],
        "properties": {
            "containerPort": {"type": "integer", "format": "int32", "default": 0},
            "protocol": {"type": "string", "default": "TCP", "description": "TCP/UDP/SCTP"},
        },
    }
    container = {
        "type": "object",
        "required": ["name"],
        "properties": {
            "name": {"type": "string", "default": ""},
            "ports": {
                "type": "array",
                "items": {"allOf": [{"$ref": _REF + "io.k8s.api.core.v1.ContainerPort"}]},
                "x-kubernetes-list-type": "map",
                "x-kubernetes-list-map-keys": ["containerPort", "protocol"],
                "x-kubernetes-patch-merge-key": "containerPort",
            },
            "resources": {
                "type": "object",
                "additionalProperties": {
                    "$ref": _REF + "io.k8s.apimachinery.pkg.api.resource.Quantity"
                },
            },
        },
    }
    return {
        "components": {
            "schemas": {
                "io.k8s.api.core.v1.PodTemplateSpec": {
                    "type": "object",
                    "properties": {
                        "metadata": {
                            "allOf": [
                                {"$ref": _REF + "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"}
                            ],
                            "default": {},
                        },
                        "spec": {"allOf": [{"$ref": _REF + "io.k8s.api.core.v1.PodSpec"}]},
                    },
                },
                "io.k8s.api.core.v1.PodSpec": {
                    "type": "object",
                    "description": "the pod",
                    "x-kubernetes-unions": [{"discriminator": "x"}],
                    "properties": {
                        "containers": {
                            "type": "array",
                            "items": {"$ref": _REF + "io.k8s.api.core.v1.Container"},
                        },
                        **extra_pod_spec_properties,
                    },
                },
                "io.k8s.api.core.v1.Container": container,
                "io.k8s.api.core.v1.ContainerPort": port,
                "io.k8s.apimachinery.pkg.api.resource.Quantity": {
                    "oneOf": [{"type": "string"}, {"type": "number"}]
                },
                "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta": {
                    "type": "object",
                    "properties": {"managedFields": {"type": "array"}},
                },
            }
        }
    }


def test_the_conversion_inlines_refs_and_keeps_only_what_a_crd_may_say() -> None:
    schema = gen.convert(_document())
    assert set(schema["properties"]["metadata"]["properties"]) == {
        "annotations",
        "finalizers",
        "labels",
        "name",
        "namespace",
    }
    container = schema["properties"]["spec"]["properties"]["containers"]["items"]
    assert container["required"] == ["name"]
    assert "default" not in container["properties"]["name"]
    ports = container["properties"]["ports"]
    assert ports["x-kubernetes-list-type"] == "map"
    assert "x-kubernetes-patch-merge-key" not in ports
    # The one default that stays: a list-map key that is not required must have one.
    assert ports["items"]["properties"]["protocol"] == {"type": "string", "default": "TCP"}
    assert ports["items"]["properties"]["containerPort"] == {"type": "integer", "format": "int32"}
    cpu = container["properties"]["resources"]["additionalProperties"]
    assert cpu["x-kubernetes-int-or-string"] is True and cpu["pattern"].startswith("^(\\+|-)?")
    assert "x-kubernetes-unions" not in schema["properties"]["spec"]
    assert "description" not in schema["properties"]["spec"]


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ({"weird": {"type": "string", "oneOf": [{"type": "string"}]}}, "keyword 'oneOf'"),
        ({"untyped": {"properties": {}}}, "template.spec.untyped: no type"),
        ({"loop": {"$ref": _REF + "io.k8s.api.core.v1.PodSpec"}}, "PodSpec refers to itself"),
    ],
)
def test_what_a_crd_cannot_say_is_refused_with_its_path(
    extra: dict[str, Any], message: str
) -> None:
    with pytest.raises(gen.ConversionError, match=message):
        gen.convert(_document(**extra))


@pytest.mark.conformance
def test_the_vendored_schema_is_the_conformance_releases() -> None:
    openapi = gen.default_openapi_path(DEFAULT_KUBERNETES_VERSION)
    assert openapi.is_file(), f"{openapi} missing: run tools/conformance/build.sh"
    expected = gen.render(gen.vendored_document(openapi, DEFAULT_KUBERNETES_VERSION))
    assert gen.VENDORED.read_text() == expected, (
        f"{gen.VENDORED} is stale: run python tools/deploy/pod_template_schema.py"
    )
