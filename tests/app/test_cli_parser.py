"""The ``kubetrain`` parser lists every subcommand but builds only the chosen one's flags, so a
subcommand does not import (and pay for) the others' rooms at start."""

from __future__ import annotations

import subprocess
import sys

import pytest

from kubetrain.cli import COMMANDS, build_parser


def test_the_chosen_subcommand_gets_its_flags() -> None:
    args = build_parser(["operator", "--namespace", "ns"]).parse_args(
        ["operator", "--namespace", "ns"]
    )
    assert args.command == "operator" and args.namespace == "ns" and callable(args.main)


def test_every_subcommand_is_listed() -> None:
    help_text = build_parser([]).format_help()
    for name in COMMANDS:
        assert name in help_text


def test_an_unknown_subcommand_is_refused_naming_the_choices() -> None:
    with pytest.raises(SystemExit):
        build_parser(["nope"]).parse_args(["nope"])


def test_the_operator_does_not_import_the_cluster_bench_or_up() -> None:
    code = (
        "import sys; from kubetrain.cli import build_parser; build_parser(['operator']); "
        "print(sorted(m for m in sys.modules if m.startswith(('kubetrain.cluster.', "
        "'kubetrain.bench', 'kubetrain.up', 'rich'))))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]", out.stdout
