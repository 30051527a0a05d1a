"""Vendor the Kubernetes PodTemplateSpec schema, in CRD form, for the generated CRDs.

Why: a job's replica specs each hold a pod template. With the full structural schema of that
template in the CRD, kube-apiserver refuses a misspelled or mistyped pod field at ``kubectl apply``
with its path (``spec.pytorchReplicaSpecs.Worker.template.spec.containers[0].imagePullPolicy``)
instead of the operator failing later when it creates the pod, and unknown fields are pruned
the same way kube-apiserver prunes them on a Pod.

The source is the OpenAPI v3 document that Kubernetes publishes for the core group
(``api/openapi-spec/v3/api__v1_openapi.json`` of ``k8s.io/kubernetes``, which
``tools/conformance/build.sh`` already downloads for the conformance tier's kube-apiserver). The
product never reads it; it reads the result, ``reconcilers/api/pod_template_schema.json``, which
this script writes and the conformance tier regenerates and compares.

The conversion is the one controller-gen applies to Go types (the reference's CRDs come from it):

- ``$ref`` and the ``allOf: [{$ref}]`` wrapper are inlined (the pod template has no cycles);
- descriptions are dropped (the CRDs stay small; ``kubectl explain`` of built-in kinds has them);
- ``default`` is dropped (a CRD default is written into every stored job; the kubelet's and
  kube-apiserver's pod defaulting apply when the pod is created) except for a list-map key that
  is not required, which a structural schema must default (``ports[].protocol: TCP``);
- ObjectMeta becomes the embedded metadata controller-gen generates: labels, annotations, name,
  namespace, finalizers;
- Quantity and IntOrString become ``x-kubernetes-int-or-string`` (Quantity with its pattern);
- Kubernetes' own ``x-kubernetes-list-type``, ``-list-map-keys`` and ``-map-type`` markers stay;
  the ones a CRD may not carry (``x-kubernetes-patch-*``, ``-unions``) go.

Usage::

    python tools/deploy/pod_template_schema.py            # rewrite the vendored file
    python tools/deploy/pod_template_schema.py --check    # exit 1 when it is out of date
    python tools/deploy/pod_template_schema.py --openapi PATH --kubernetes-version v1.36.3
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

Schema = dict[str, Any]

REPO = Path(__file__).resolve().parents[2]
VENDORED = REPO / "reconcilers" / "api" / "pod_template_schema.json"
#: The conformance tier's Kubernetes release (tests/conformance/controlplane.py).
DEFAULT_KUBERNETES_VERSION = "v1.36.3"

_ROOT = "io.k8s.api.core.v1.PodTemplateSpec"
_QUANTITY_PATTERN = (
    r"^(\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))(([KMGTPE]i)|[numkMGTPE]|([eE](\+|-)?"
    r"(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))))?$"
)
_SPECIAL: dict[str, Schema] = {
    "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta": {
        "type": "object",
        "properties": {
            "annotations": {"type": "object", "additionalProperties": {"type": "string"}},
            "finalizers": {"type": "array", "items": {"type": "string"}},
            "labels": {"type": "object", "additionalProperties": {"type": "string"}},
            "name": {"type": "string"},
            "namespace": {"type": "string"},
        },
    },
    "io.k8s.apimachinery.pkg.api.resource.Quantity": {
        "anyOf": [{"type": "integer"}, {"type": "string"}],
        "pattern": _QUANTITY_PATTERN,
        "x-kubernetes-int-or-string": True,
    },
    "io.k8s.apimachinery.pkg.util.intstr.IntOrString": {
        "anyOf": [{"type": "integer"}, {"type": "string"}],
        "x-kubernetes-int-or-string": True,
    },
    "io.k8s.apimachinery.pkg.apis.meta.v1.Time": {"type": "string", "format": "date-time"},
}
#: Keys copied as they are; everything else is dropped or handled below.
_KEPT = frozenset(
    {
        "type",
        "format",
        "required",
        "x-kubernetes-list-type",
        "x-kubernetes-list-map-keys",
        "x-kubernetes-map-type",
        "minimum",
        "maximum",
        "minLength",
        "maxLength",
        "minItems",
        "maxItems",
        "pattern",
    }
)
_DROPPED = frozenset(
    {
        "description",
        "default",
        "x-kubernetes-patch-merge-key",
        "x-kubernetes-patch-strategy",
        "x-kubernetes-unions",
    }
)


class ConversionError(ValueError):
    """The source document has something a structural CRD schema cannot say; names the path."""


def default_openapi_path(kubernetes_version: str) -> Path:
    """Where ``tools/conformance/build.sh`` leaves the core group's OpenAPI v3 document."""
    cache = Path(os.environ.get("KUBETRAIN_CACHE") or Path.home() / ".cache" / "kubetrain")
    return (
        cache
        / "conformance"
        / f"k8s-{kubernetes_version}"
        / "gomodcache"
        / f"k8s.io/kubernetes@{kubernetes_version}"
        / "api/openapi-spec/v3/api__v1_openapi.json"
    )


def convert(document: Schema) -> Schema:
    """The PodTemplateSpec of an OpenAPI v3 document as a structural CRD schema."""
    components: Schema = document["components"]["schemas"]

    def resolve(ref: str, path: str, stack: tuple[str, ...]) -> Schema:
        name = ref.rsplit("/", 1)[-1]
        if name in _SPECIAL:
            return json.loads(json.dumps(_SPECIAL[name]))
        if name in stack:
            raise ConversionError(f"{path}: {name} refers to itself; a CRD schema cannot")
        if name not in components:
            raise ConversionError(f"{path}: $ref {ref} is not in the document")
        return node(components[name], path, (*stack, name))

    def node(src: Schema, path: str, stack: tuple[str, ...]) -> Schema:
        if "$ref" in src:
            return resolve(src["$ref"], path, stack)
        all_of = src.get("allOf")
        if all_of:
            if len(all_of) != 1 or "$ref" not in all_of[0]:
                raise ConversionError(f"{path}: allOf other than one $ref is not converted")
            return resolve(all_of[0]["$ref"], path, stack)
        out: Schema = {}
        for key, value in src.items():
            if key in _KEPT:
                out[key] = value
            elif key == "properties":
                out[key] = {
                    name: node(child, f"{path}.{name}", stack)
                    for name, child in sorted(value.items())
                }
            elif key == "additionalProperties":
                if not isinstance(value, dict):
                    raise ConversionError(f"{path}: additionalProperties must be a schema")
                out[key] = node(value, f"{path}.*", stack)
            elif key == "items":
                out[key] = node(value, f"{path}[]", stack)
            elif key not in _DROPPED:
                raise ConversionError(f"{path}: OpenAPI keyword {key!r} is not converted")
        if "type" not in out:
            raise ConversionError(f"{path}: no type; a structural schema needs one")
        if out.get("x-kubernetes-list-type") == "map":
            _default_list_map_keys(src, out, path, components)
        return out

    return node(components[_ROOT], "template", ())


def _default_list_map_keys(src: Schema, out: Schema, path: str, components: Schema) -> None:
    """Give each list-map key that is not required the default the source declares for it."""
    items = out["items"]
    source_items = src["items"]
    if "allOf" in source_items:
        source_items = source_items["allOf"][0]
    if "$ref" in source_items:
        source_items = components[source_items["$ref"].rsplit("/", 1)[-1]]
    for key in out.get("x-kubernetes-list-map-keys", ()):
        if key in items.get("required", ()):
            continue
        default = source_items.get("properties", {}).get(key, {}).get("default")
        if default is None:
            raise ConversionError(
                f"{path}: list-map key {key!r} is neither required nor defaulted in the source"
            )
        items["properties"][key]["default"] = default


def vendored_document(openapi: Path, kubernetes_version: str) -> Schema:
    """The vendored file's content: where it came from and the converted schema."""
    return {
        "source": f"k8s.io/kubernetes@{kubernetes_version} api/openapi-spec/v3/api__v1_openapi.json",
        "generator": "tools/deploy/pod_template_schema.py",
        "schema": convert(json.loads(openapi.read_text())),
    }


def render(document: Schema) -> str:
    return json.dumps(document, indent=1, sort_keys=True) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--kubernetes-version", default=DEFAULT_KUBERNETES_VERSION)
    parser.add_argument(
        "--openapi", type=Path, help="default: the conformance build's module cache"
    )
    parser.add_argument("--out", type=Path, default=VENDORED)
    parser.add_argument("--check", action="store_true", help="compare instead of writing")
    args = parser.parse_args(argv)
    openapi = args.openapi or default_openapi_path(args.kubernetes_version)
    if not openapi.is_file():
        print(
            f"{openapi} not found: run tools/conformance/build.sh {args.kubernetes_version} "
            "(it downloads k8s.io/kubernetes), or pass --openapi",
            file=sys.stderr,
        )
        return 2
    text = render(vendored_document(openapi, args.kubernetes_version))
    if args.check:
        if not args.out.is_file() or args.out.read_text() != text:
            print(
                f"{args.out} is out of date: run {Path(__file__).relative_to(REPO)}",
                file=sys.stderr,
            )
            return 1
        return 0
    args.out.write_text(text)
    print(args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
