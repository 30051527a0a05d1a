"""``kubetrain.gctuning``: survivors of a full collection are frozen (not scanned again), a thaw
every ``thaw_seconds`` lets a full collection find cycles that died while frozen, and every
``kubetrain`` command installs it with the larger young generation."""

from __future__ import annotations

import gc
import subprocess
import sys
import weakref
from collections.abc import Iterator

import pytest

from kubetrain.gctuning import YOUNG_THRESHOLDS, FreezeAfterFullCollections, install


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class Node:
    """A reference cycle (``self.me = self``) that reference counting alone cannot free."""

    def __init__(self) -> None:
        self.me = self


@pytest.fixture
def freezer() -> Iterator[tuple[FreezeAfterFullCollections, Clock]]:
    clock = Clock()
    callback = FreezeAfterFullCollections(thaw_seconds=60, clock=clock)
    gc.callbacks.append(callback)
    try:
        yield callback, clock
    finally:
        gc.callbacks.remove(callback)
        gc.unfreeze()
        gc.collect()


def test_full_collections_freeze_their_survivors_and_a_thaw_finds_frozen_cycles(
    freezer: tuple[FreezeAfterFullCollections, Clock],
) -> None:
    _, clock = freezer
    gc.collect()
    assert gc.get_freeze_count() > 0  # the survivors: not scanned by the next full collection

    node = Node()
    gone = weakref.ref(node)
    gc.collect()  # node survives (still referenced) and is frozen with the rest
    del node  # now a cycle nobody references
    gc.collect()
    assert gone() is not None, "a frozen cycle is not scanned"

    clock.now = 61  # thaw_seconds passed: the next full collection returns everything...
    gc.collect()
    assert gc.get_freeze_count() == 0
    gc.collect()  # ...and this one scans it all
    assert gone() is None


def test_young_collections_leave_the_frozen_set_alone(
    freezer: tuple[FreezeAfterFullCollections, Clock],
) -> None:
    gc.collect()
    frozen = gc.get_freeze_count()
    gc.collect(0)
    gc.collect(1)
    assert gc.get_freeze_count() == frozen


def test_every_kubetrain_command_installs_it_once_unless_turned_off() -> None:
    probe = (
        "import gc, sys\n"
        "from kubetrain import cli, gctuning\n"
        "sys.argv = ['kubetrain', '--version']\n"
        "try:\n"
        "    cli.main(['--version'])\n"
        "except SystemExit:\n"
        "    pass\n"
        "gctuning.install()\n"
        "print(gc.get_threshold()[0])\n"
        "print(sum(isinstance(c, gctuning.FreezeAfterFullCollections) for c in gc.callbacks))\n"
    )
    on = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert on.stdout.split()[-2:] == [str(YOUNG_THRESHOLDS[0]), "1"]
    off = subprocess.run(
        [sys.executable, "-c", probe.replace("gctuning.install()\n", "")],
        capture_output=True,
        text=True,
        check=True,
        env={"KUBETRAIN_GC_TUNING": "0", "PATH": ""},
    )
    assert off.stdout.split()[-2:] == ["700", "0"]  # CPython's defaults
    before = gc.get_threshold()
    try:
        assert install() is install()  # in this process too: one callback however often called
        assert gc.get_threshold() == YOUNG_THRESHOLDS
    finally:
        for callback in [c for c in gc.callbacks if isinstance(c, FreezeAfterFullCollections)]:
            gc.callbacks.remove(callback)
        gc.unfreeze()
        gc.set_threshold(*before)
