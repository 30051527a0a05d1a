"""``kubetrain jobs`` usage errors exit 3 (invalid input) like its actions' do: argparse's own 2
means "timed out" in the job CLI's exit codes, which a script must not misread."""

from __future__ import annotations

import pytest

from kubetrain.cli import build_parser, main


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


@pytest.mark.parametrize(
    ("argv", "kubeconfig"),
    [
        (["jobs", "--kubeconfig", "k1", "list"], "k1"),
        (["jobs", "list", "--kubeconfig", "k2", "-A"], "k2"),
        (["jobs", "--kubeconfig", "k1", "wait", "pytorchjob/p", "--kubeconfig", "k3"], "k3"),
        (["jobs", "list"], None),
    ],
    ids=["before the action", "after it", "after wins", "neither"],
)
def test_kubeconfig_is_taken_before_or_after_the_action(
    argv: list[str], kubeconfig: str | None
) -> None:
    """As kubectl takes its flags anywhere: ``kubetrain jobs list --kubeconfig F``."""
    args = build_parser(argv).parse_args(argv)
    assert args.kubeconfig == kubeconfig
