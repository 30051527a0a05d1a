"""Decoding of the few protobuf request bodies kubectl sends, into JSON-shaped dicts.

kubectl's generator commands (``kubectl create namespace|configmap|secret|serviceaccount|job``) use
typed client-go clients, which send ``application/vnd.kubernetes.protobuf`` bodies and do not
fall back to JSON. The server is JSON-only otherwise; this module turns those bodies into the
dicts the JSON path would have received. Kinds without a field table here get 415. A batch/v1
Job is decoded with the fields ``kubectl create job`` sets and the common ones of its spec and
pod template (name, image, command, args, workingDir, env values, resources, restartPolicy,
nodeSelector, serviceAccountName); other fields of a typed client's Job are not read.

Wire format: ``k8s\\x00`` + ``runtime.Unknown{1: TypeMeta{1: apiVersion, 2: kind}, 2: raw}``
where ``raw`` is the object's message (field numbers from k8s.io/api generated.proto).
"""

from __future__ import annotations

import base64
from collections.abc import Callable, Iterator
from typing import Any

__all__ = ["PROTOBUF", "ProtobufError", "decode_object"]

PROTOBUF = "application/vnd.kubernetes.protobuf"
_MAGIC = b"k8s\x00"


class ProtobufError(ValueError):
    """The body is not a protobuf object this server can decode; the message says why."""


def _varint(data: bytes, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        if pos >= len(data):
            raise ProtobufError("truncated varint")
        byte = data[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, pos
        shift += 7


def _fields(data: bytes) -> Iterator[tuple[int, int, Any]]:
    """(field number, wire type, value: int for varints, bytes for length-delimited)."""
    pos = 0
    while pos < len(data):
        key, pos = _varint(data, pos)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, pos = _varint(data, pos)
            yield number, wire, value
        elif wire == 2:
            length, pos = _varint(data, pos)
            yield number, wire, data[pos : pos + length]
            pos += length
        elif wire == 1:
            yield number, wire, data[pos : pos + 8]
            pos += 8
        elif wire == 5:
            yield number, wire, data[pos : pos + 4]
            pos += 4
        else:
            raise ProtobufError(f"unsupported wire type {wire}")


def _str(v: Any) -> str:
    return bytes(v).decode("utf-8")


def _b64(v: Any) -> str:
    return base64.b64encode(bytes(v)).decode()


def _map(value_of: Callable[[Any], Any]) -> Callable[[dict[str, Any], str, Any], None]:
    def put(out: dict[str, Any], name: str, raw: Any) -> None:
        key, val = "", None
        for n, _, v in _fields(bytes(raw)):
            if n == 1:
                key = _str(v)
            elif n == 2:
                val = v
        out.setdefault(name, {})[key] = value_of(val if val is not None else b"")

    return put


def _scalar(conv: Callable[[Any], Any]) -> Callable[[dict[str, Any], str, Any], None]:
    def put(out: dict[str, Any], name: str, raw: Any) -> None:
        out[name] = conv(raw)

    return put


def _repeated(conv: Callable[[Any], Any]) -> Callable[[dict[str, Any], str, Any], None]:
    def put(out: dict[str, Any], name: str, raw: Any) -> None:
        out.setdefault(name, []).append(conv(raw))

    return put


def _message(table: dict[int, tuple[str, Any]]) -> Callable[[Any], dict[str, Any]]:
    def conv(raw: Any) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for number, _, value in _fields(bytes(raw)):
            entry = table.get(number)
            if entry is not None:
                name, put = entry
                put(out, name, value)
        return out

    return conv


def _nonzero(conv: Callable[[Any], Any]) -> Callable[[dict[str, Any], str, Any], None]:
    """Go marshals non-pointer scalars even when zero: keep them out of the JSON shape."""

    def put(out: dict[str, Any], name: str, raw: Any) -> None:
        value = conv(raw)
        if value:
            out[name] = value

    return put


_STR = _nonzero(_str)
_BOOL = _scalar(bool)
_INT = _nonzero(int)
_STR_MAP = _map(_str)
_OWNER_REF = _message(
    {
        1: ("kind", _STR),
        3: ("name", _STR),
        4: ("uid", _STR),
        5: ("apiVersion", _STR),
        6: ("controller", _BOOL),
        7: ("blockOwnerDeletion", _BOOL),
    }
)
_OBJECT_META = _message(
    {
        1: ("name", _STR),
        2: ("generateName", _STR),
        3: ("namespace", _STR),
        5: ("uid", _STR),
        6: ("resourceVersion", _STR),
        7: ("generation", _INT),
        11: ("labels", _STR_MAP),
        12: ("annotations", _STR_MAP),
        13: ("ownerReferences", _repeated(_OWNER_REF)),
        14: ("finalizers", _repeated(_str)),
    }
)
_META = ("metadata", _scalar(_OBJECT_META))
_NAME_REF = _message({1: ("name", _STR)})
_OBJECT_REF = _message({1: ("kind", _STR), 2: ("namespace", _STR), 3: ("name", _STR)})

_QUANTITY = _message({1: ("string", _STR)})
_QUANTITY_MAP = _map(lambda raw: _QUANTITY(raw).get("string", ""))
_MESSAGE = _scalar  # an embedded message: present on the wire -> present in JSON, even empty
_CONTAINER = _message(
    {
        1: ("name", _STR),
        2: ("image", _STR),
        3: ("command", _repeated(_str)),
        4: ("args", _repeated(_str)),
        5: ("workingDir", _STR),
        7: ("env", _repeated(_message({1: ("name", _STR), 2: ("value", _STR)}))),
        8: (
            "resources",
            _MESSAGE(_message({1: ("limits", _QUANTITY_MAP), 2: ("requests", _QUANTITY_MAP)})),
        ),
        13: ("terminationMessagePath", _STR),
        14: ("imagePullPolicy", _STR),
        20: ("terminationMessagePolicy", _STR),
    }
)
_POD_SPEC = _message(
    {
        2: ("containers", _repeated(_CONTAINER)),
        3: ("restartPolicy", _STR),
        7: ("nodeSelector", _STR_MAP),
        8: ("serviceAccountName", _STR),
        20: ("initContainers", _repeated(_CONTAINER)),
    }
)
_POD_TEMPLATE_SPEC = _message({1: _META, 2: ("spec", _MESSAGE(_POD_SPEC))})
_JOB_SPEC = _message(
    {
        1: ("parallelism", _scalar(int)),
        2: ("completions", _scalar(int)),
        3: ("activeDeadlineSeconds", _scalar(int)),
        4: ("selector", _MESSAGE(_message({1: ("matchLabels", _STR_MAP)}))),
        5: ("manualSelector", _BOOL),
        6: ("template", _MESSAGE(_POD_TEMPLATE_SPEC)),
        7: ("backoffLimit", _scalar(int)),
        8: ("ttlSecondsAfterFinished", _scalar(int)),
        9: ("completionMode", _STR),
        10: ("suspend", _BOOL),
        12: ("backoffLimitPerIndex", _scalar(int)),
        13: ("maxFailedIndexes", _scalar(int)),
        14: ("podReplacementPolicy", _STR),
        15: ("managedBy", _STR),
    }
)

#: meta/v1 DeleteOptions, sent as the body of a DELETE by typed clients (controller-runtime's
#: client for built-in kinds: a test suite deleting its namespace). Registered in every group
#: version, so it is decoded whatever apiVersion its envelope names.
_DELETE_OPTIONS = _message(
    {
        1: ("gracePeriodSeconds", _scalar(int)),
        2: ("preconditions", _scalar(_message({1: ("uid", _STR), 2: ("resourceVersion", _STR)}))),
        3: ("orphanDependents", _BOOL),
        4: ("propagationPolicy", _STR),
        5: ("dryRun", _repeated(_str)),
    }
)

_KINDS: dict[tuple[str, str], Callable[[Any], dict[str, Any]]] = {
    ("batch/v1", "Job"): _message({1: _META, 2: ("spec", _MESSAGE(_JOB_SPEC))}),
    ("v1", "ConfigMap"): _message(
        {1: _META, 2: ("data", _STR_MAP), 3: ("binaryData", _map(_b64)), 4: ("immutable", _BOOL)}
    ),
    ("v1", "Secret"): _message(
        {
            1: _META,
            2: ("data", _map(_b64)),
            3: ("type", _STR),
            4: ("stringData", _STR_MAP),
            5: ("immutable", _BOOL),
        }
    ),
    ("v1", "Namespace"): _message(
        {1: _META, 2: ("spec", _scalar(_message({1: ("finalizers", _repeated(_str))})))}
    ),
    ("v1", "ServiceAccount"): _message(
        {
            1: _META,
            2: ("secrets", _repeated(_OBJECT_REF)),
            3: ("imagePullSecrets", _repeated(_NAME_REF)),
            4: ("automountServiceAccountToken", _BOOL),
        }
    ),
}


def decode_object(body: bytes) -> dict[str, Any]:
    """The object in a kube protobuf body as a JSON-shaped dict (apiVersion/kind set).

    Raises ProtobufError for a body without the ``k8s\\x00`` envelope or of a kind without a
    field table (the caller answers 415 so the client can send JSON instead).
    """
    if not body.startswith(_MAGIC):
        raise ProtobufError("missing the k8s protobuf envelope")
    api_version = kind = ""
    raw = b""
    for number, _, value in _fields(body[len(_MAGIC) :]):
        if number == 1:
            for n, _, v in _fields(bytes(value)):
                if n == 1:
                    api_version = _str(v)
                elif n == 2:
                    kind = _str(v)
        elif number == 2:
            raw = bytes(value)
    decode = _KINDS.get((api_version, kind))
    if decode is None and kind == "DeleteOptions":
        decode = _DELETE_OPTIONS
    if decode is None:
        raise ProtobufError(f"protobuf bodies of {api_version}/{kind} are not supported")
    return {"apiVersion": api_version, "kind": kind, **decode(raw)}
