"""The ``operator``, ``cluster`` and ``up`` parsers and their options dataclasses agree: every
flag-declaring field is a flag of its command, no flag gives the dataclass default, each flag's
value reaches its field, and a bad value is refused naming the flag (argparse's error, or one
``error:`` line when the options refuse it), never a traceback."""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import datetime
import typing
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

import pytest

from kubetrain import cluster_command, operator, up
from kubetrain.base.flags import FLAG, Flag
from kubetrain.cli import build_parser
from kubetrain.cluster.nodesim.options import NodeSimOptions
from kubetrain.cluster_command import ClusterOptions
from kubetrain.operator import OperatorOptions
from kubetrain.up import UpOptions


@dataclasses.dataclass(frozen=True)
class Command:
    name: str
    options: type[Any]
    from_args: Callable[[argparse.Namespace], Any]
    #: Fields set otherwise than by a flag of their own (deliberately: adding a field forces a
    #: choice between a flag and this list).
    no_flag: frozenset[str]


COMMANDS = [
    Command(
        "operator",
        OperatorOptions,
        operator.options_from_args,
        frozenset(
            {
                "graceful_shutdown_timeout",
                "component_host",
                "cluster_domain",
                "webhook_ca_validity",  # tests shorten it; no user needs to
                "webhook_ca_propagation_delay",
            }
        ),
    ),
    Command(
        "cluster",
        ClusterOptions,
        lambda args: cluster_command.options_from_args(ClusterOptions, args),
        frozenset({"nodesim_options"}),
    ),
    Command("up", UpOptions, up.options_from_args, frozenset({"nodesim_options", "operator"})),
]
IDS = [c.name for c in COMMANDS]
#: Simulator flags the cluster commands do not take (they declare ``--nodes`` themselves).
NODESIM_NOT_ON_CLUSTER = frozenset({"nodes"})
#: A value each typed flag accepts where a made-up one would be refused by the options.
VALID: dict[str, tuple[list[str], Any]] = {
    "--enable-scheme": (["--enable-scheme", "TFJob", "--enable-scheme", "jaxjob"], None),
    # only meaningful with --metrics-secure (refused alone, naming both flags)
    "--metrics-cert-dir": (["--metrics-cert-dir", "/certs", "--metrics-secure"], "/certs"),
}


@pytest.fixture(autouse=True)
def _no_environment_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("KUBEFLOW_NAMESPACE", "CUSTOM_CLUSTER_DOMAIN"):
        monkeypatch.delenv(name, raising=False)


def parse(command: str, *argv: str) -> argparse.Namespace:
    return build_parser([command, *argv]).parse_args([command, *argv])


def flagged(cls: type[Any]) -> list[tuple[str, Flag, Any]]:
    """(field name, its Flag, its type) of every field of ``cls`` declaring a command-line flag."""
    hints = typing.get_type_hints(cls)
    return [
        (f.name, f.metadata[FLAG], hints[f.name])
        for f in dataclasses.fields(cls)
        if isinstance(f.metadata.get(FLAG), Flag) and f.metadata[FLAG].name
    ]


def sample(name: str, spec: Flag, tp: Any, default: Any) -> tuple[list[str], Any]:
    """Arguments giving the field a value other than ``default``, and that value."""
    assert spec.name is not None
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if tp is bool:
        return ([f"--no-{spec.name[2:]}"], False) if default else ([spec.name], True)
    if tp is int:
        return [spec.name, str(default + 3)], default + 3
    if tp is float:
        return [spec.name, str(default + 0.5)], default + 0.5
    if origin is Literal:
        choice = next(c for c in args if c != default)
        return [spec.name, choice], choice
    if origin is tuple:
        return [spec.name, "a", spec.name, "b"], ("a", "b")
    if origin is frozenset:
        return [spec.name, "a", spec.name, "b"], frozenset({"a", "b"})
    if Path in args:
        return [spec.name, "some/dir"], Path("some/dir")
    if tp is datetime.timedelta:
        return [spec.name, "1h30m"], datetime.timedelta(minutes=90)
    return [spec.name, f"sample-{name}"], f"sample-{name}"


@pytest.mark.parametrize("command", COMMANDS, ids=IDS)
def test_every_field_has_its_flag_on_the_command(command: Command) -> None:
    parser = build_parser([command.name])
    help_text = parse_help(command.name)
    dests = {a.dest: a for a in subparser(parser, command.name)._actions}
    fields = {f.name for f in dataclasses.fields(command.options)}
    for name, spec, _ in flagged(command.options):
        assert name in dests, f"{spec.name} of {command.options.__name__}.{name} not declared"
        assert spec.name in dests[name].option_strings
        assert spec.name in help_text
    assert fields - {name for name, _, _ in flagged(command.options)} == command.no_flag


@pytest.mark.parametrize("command", COMMANDS, ids=IDS)
def test_no_flags_give_the_dataclass_defaults(command: Command) -> None:
    assert command.from_args(parse(command.name)) == command.options()


@pytest.mark.parametrize("command", COMMANDS, ids=IDS)
def test_each_flag_value_reaches_its_field(command: Command) -> None:
    defaults = command.options()
    for name, spec, tp in flagged(command.options):
        assert spec.name is not None
        argv, expected = VALID.get(spec.name) or sample(name, spec, tp, getattr(defaults, name))
        got = command.from_args(parse(command.name, *argv))
        if spec.name == "--enable-scheme":
            assert [k.kind for k in got.kinds] == ["TFJob", "JAXJob"]
        else:
            assert getattr(got, name) == expected, spec.name
        if name == "nodes":  # the cluster's --nodes is the simulator's too
            assert got.nodesim_options.nodes == expected


@pytest.mark.parametrize("command", ["cluster", "up"])
def test_the_simulator_flags_reach_the_nodesim_options(command: str) -> None:
    defaults = NodeSimOptions()
    for name, spec, tp in flagged(NodeSimOptions):
        if name in NODESIM_NOT_ON_CLUSTER:
            continue
        argv, expected = sample(name, spec, tp, getattr(defaults, name))
        options = UpOptions if command == "up" else ClusterOptions
        got = cluster_command.options_from_args(options, parse(command, *argv))
        assert getattr(got.nodesim_options, name) == expected, spec.name


@pytest.mark.parametrize("command", COMMANDS, ids=IDS)
def test_a_value_of_the_wrong_type_is_refused_naming_the_flag(
    command: Command, capsys: pytest.CaptureFixture[str]
) -> None:
    for _, spec, tp in flagged(command.options):
        if tp in (int, float) or typing.get_origin(tp) is Literal:
            with pytest.raises(SystemExit) as exited:
                parse(command.name, str(spec.name), "not-a-value")
            assert exited.value.code == 2
            err = capsys.readouterr().err
            assert f"kubetrain {command.name}: error: argument {spec.name}" in err, err


def test_up_keeps_the_no_wait_alias() -> None:
    assert up.options_from_args(parse("up", "--no-wait")).exit_when_done is True


@pytest.mark.parametrize(
    ("command", "argv", "message"),
    [
        ("operator", ["--controller-threads", "0"], "--controller-threads must be >= 1, got 0"),
        ("operator", ["--shards", "0"], "--shards must be >= 1"),
        ("operator", ["--enable-scheme", "sparkjob"], "--enable-scheme: unknown kind 'sparkjob'"),
        ("cluster", ["--nodes", "-1"], "nodes must be >= 0, got -1"),
        ("up", ["--nodes", "0"], "--nodes must be >= 1 for the example jobs to run, got 0"),
    ],
)
def test_a_value_the_options_refuse_is_one_error_line(
    command: str, argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    args = parse(command, *argv)
    status = asyncio.run(args.main(args))
    err = capsys.readouterr().err
    assert status == (1 if command == "up" else 2)
    assert err.startswith(f"kubetrain {command}: error: ") and err.count("\n") == 1, err
    assert message in err


def test_the_environment_default_of_namespace(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KUBEFLOW_NAMESPACE", "kubeflow")
    monkeypatch.setenv("CUSTOM_CLUSTER_DOMAIN", "example.org")
    got = operator.options_from_args(parse("operator"))
    assert (got.namespace, got.cluster_domain) == ("kubeflow", "example.org")
    assert operator.options_from_args(parse("operator", "--namespace", "ns")).namespace == "ns"


def subparser(parser: argparse.ArgumentParser, name: str) -> argparse.ArgumentParser:
    action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    chosen: argparse.ArgumentParser = action.choices[name]
    return chosen


def parse_help(command: str) -> str:
    return subparser(build_parser([command]), command).format_help()
