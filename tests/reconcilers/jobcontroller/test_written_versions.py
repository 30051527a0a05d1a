"""``WrittenVersions`` and ``patch_status``: the last status write is waited for, once."""

from __future__ import annotations

from fakes import RecordingJobWriter

from kubetrain.informers.resource import ResourceRef
from kubetrain.informers.transport import ApiStatusError
from kubetrain.reconcilers.jobcontroller.written_versions import WrittenVersions, patch_status

THINGS = ResourceRef("example.com", "v1", "things", True, "Thing")
CACHED = {"metadata": {"name": "t", "namespace": "ns", "uid": "u1", "resourceVersion": "7"}}


def test_the_cache_is_behind_until_it_shows_the_written_version_or_a_newer_one() -> None:
    written = WrittenVersions()
    assert written.caught_up("ns/t", "u1", "7")  # nothing written: nothing to wait for
    written.note("ns/t", "u1", {"metadata": {"resourceVersion": "9"}})
    assert not written.caught_up("ns/t", "u1", "8")
    assert written.caught_up("ns/t", "u1", "10")  # newer: caught up, and the entry ends
    assert written.uid_of("ns/t") is None


def test_an_object_re_created_under_the_name_is_not_waited_for() -> None:
    written = WrittenVersions()
    written.note("ns/t", "u1", {"metadata": {"resourceVersion": "9"}})
    assert written.caught_up("ns/t", "u2", "3")
    assert written.forget("ns/t") is None


async def test_patch_status_sends_only_the_change_with_the_cached_version() -> None:
    client, written = RecordingJobWriter(), WrittenVersions()
    old = {"phase": "A", "gone": 1}
    assert await patch_status(
        client, THINGS, CACHED, old, {"phase": "B"}, field_manager="m", written=written
    )
    assert client.patches == [
        {"metadata": {"resourceVersion": "7"}, "status": {"phase": "B", "gone": None}}
    ]
    assert written.uid_of("ns/t") == "u1"
    assert await patch_status(client, THINGS, CACHED, old, old, field_manager="m", written=written)
    assert len(client.patches) == 1  # unchanged: nothing sent


async def test_a_stale_cache_is_a_false_not_an_error() -> None:
    client, written = RecordingJobWriter(), WrittenVersions()
    client.errors[("patch/status", "t")] = ApiStatusError(409, reason="Conflict")
    assert not await patch_status(
        client, THINGS, CACHED, {}, {"phase": "B"}, field_manager="m", written=written
    )
    assert written.uid_of("ns/t") is None
