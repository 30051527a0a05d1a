"""``reap_orphans``: children of a control plane whose test process was killed before ``stop``
are killed by the next start; those of a live owner, and unrelated processes that reuse a
listed PID, are left alone. Runs without the real binaries (stand-in child processes)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from conformance.controlplane import OWNER_FILE, PIDS_FILE, WORK_DIR_PREFIX, reap_orphans


def _child(work: Path) -> subprocess.Popen[bytes]:
    """A stand-in component: its command line names the work dir, like etcd's --data-dir."""
    return subprocess.Popen(
        [sys.executable, "-c", "import time; time.sleep(60)", str(work / "etcd-data")]
    )


def _work_dir(tmp: Path, name: str, owner: int, pids: list[int]) -> Path:
    work = tmp / f"{WORK_DIR_PREFIX}{name}"
    work.mkdir()
    (work / OWNER_FILE).write_text(str(owner))
    (work / PIDS_FILE).write_text("".join(f"{p}\n" for p in pids))
    return work


def _dead_pid() -> int:
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    return gone.pid


def test_children_of_a_dead_owner_are_killed_and_others_kept(tmp_path: Path) -> None:
    orphaned_dir = tmp_path / f"{WORK_DIR_PREFIX}orphaned"
    orphan = _child(orphaned_dir)
    bystander = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    owned_dir = tmp_path / f"{WORK_DIR_PREFIX}owned"
    owned = _child(owned_dir)
    try:
        _work_dir(tmp_path, "orphaned", _dead_pid(), [orphan.pid, bystander.pid])
        _work_dir(tmp_path, "owned", os.getpid(), [owned.pid])
        assert reap_orphans(tmp_path) == 1
        assert orphan.wait(timeout=10) == -9
        assert not orphaned_dir.exists()
        assert bystander.poll() is None  # listed, but not running in that work dir
        assert owned.poll() is None and owned_dir.exists()  # its owner (we) is alive
    finally:
        for proc in (orphan, bystander, owned):
            proc.kill()
            proc.wait()
