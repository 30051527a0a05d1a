"""A DELETE whose DeleteOptions body is protobuf, as typed Go clients send it (controller-runtime's
client for built-in kinds: Kubeflow Trainer's e2e suite deleting its namespace got 400 "invalid
DeleteOptions" from the embedded server). The options are read, not just tolerated: a wrong UID
precondition is a 409, dryRun keeps the object. Runs on the real control plane too."""

from __future__ import annotations

import pytest
from apiserver_helpers import Raw

pytestmark = pytest.mark.http_api

PROTOBUF = "application/vnd.kubernetes.protobuf"
CM = "/api/v1/namespaces/default/configmaps"


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        byte, n = n & 0x7F, n >> 7
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _field(number: int, payload: bytes) -> bytes:
    """A length-delimited field (strings and messages)."""
    return _varint(number << 3 | 2) + _varint(len(payload)) + payload


def delete_options(*, uid: str | None = None, dry_run: bool = False) -> bytes:
    """``k8s\\x00`` + runtime.Unknown{TypeMeta{v1, DeleteOptions}, raw}, field numbers of
    meta/v1 generated.proto (2: preconditions{1: uid}, 4: propagationPolicy, 5: dryRun)."""
    options = _field(4, b"Background")
    if uid is not None:
        options += _field(2, _field(1, uid.encode()))
    if dry_run:
        options += _field(5, b"All")
    type_meta = _field(1, b"v1") + _field(2, b"DeleteOptions")
    return b"k8s\x00" + _field(1, type_meta) + _field(2, options)


async def test_a_protobuf_delete_options_body_is_read(raw: Raw) -> None:
    status, made, _ = await raw.post(
        CM, {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "pb-delete"}}
    )
    assert status == 201, made
    path = f"{CM}/pb-delete"

    status, body, _ = await raw.call("DELETE", path, raw=delete_options(uid="not-its-uid"),
                                     content_type=PROTOBUF)  # fmt: skip
    assert status == 409, body
    assert "not-its-uid" in body["message"]

    status, body, _ = await raw.call("DELETE", path, raw=delete_options(dry_run=True),
                                     content_type=PROTOBUF)  # fmt: skip
    assert status == 200, body
    assert (await raw.get(path))[0] == 200  # a dry run deletes nothing

    uid = made["metadata"]["uid"]
    status, body, _ = await raw.call("DELETE", path, raw=delete_options(uid=uid),
                                     content_type=PROTOBUF)  # fmt: skip
    assert status == 200, body
    assert (await raw.get(path))[0] == 404
