"""``kubetrain jobs`` usage errors exit 3 (invalid input) like its actions' do: argparse's own 2
means "timed out" in the job CLI's exit codes, which a script must not misread."""

from __future__ import annotations

import pytest

from kubetrain.cli import main


@pytest.mark.parametrize(
    "argv",
    [["jobs"], ["jobs", "bogus"], ["jobs", "--bogus", "list"], ["jobs", "wait"]],
    ids=["no action", "unknown action", "unknown flag", "action without its job"],
)
def test_a_usage_error_exits_3(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(argv)
    assert exited.value.code == 3
    assert "error:" in capsys.readouterr().err
