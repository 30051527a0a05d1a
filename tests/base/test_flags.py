"""Flags declared once on an options dataclass: the parser and the options always agree."""

from __future__ import annotations

import argparse
import dataclasses
import datetime
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import pytest

from kubetrain.base.flags import (
    FLAG,
    add_flags,
    flag,
    format_duration,
    options_from_args,
    parse_duration,
)


@dataclass(frozen=True, kw_only=True)
class Sample:
    threads: int = field(default=4, metadata=flag("--threads", "workers"))
    qps: float = field(default=2.5, metadata=flag("--qps", "rate"))
    name: str = field(default="x", metadata=flag("--name", "a name"))
    namespace: str | None = field(default=None, metadata=flag("--namespace", "ns", env="NS"))
    fast: bool = field(default=False, metadata=flag("--fast", "go fast"))
    sync: bool = field(default=True, metadata=flag("--sync", "sync first", negatable=True))
    fmt: Literal["json", "text"] = field(default="json", metadata=flag("--fmt", "format"))
    kinds: tuple[str, ...] = field(default=(), metadata=flag("--kind", "a kind"))
    schedulers: frozenset[str] = field(
        default_factory=lambda: frozenset({"default"}), metadata=flag("--scheduler", "one")
    )
    domain: str = field(default="", metadata=flag(None, "from env only", env="DOMAIN"))
    internal: float = 30.0


def parse(argv: list[str], environ: dict[str, str] | None = None) -> Sample:
    parser = argparse.ArgumentParser(prog="t", exit_on_error=False)
    add_flags(parser, Sample, environ=environ or {})
    return options_from_args(Sample, parser.parse_args(argv), environ=environ or {})


def test_no_flags_gives_the_dataclass_defaults() -> None:
    assert parse([]) == Sample()


def test_each_flag_reaches_its_field() -> None:
    argv = "--threads 8 --qps 0.5 --name y --namespace ns1 --fast --no-sync --fmt text"
    got = parse([*argv.split(), "--kind", "a", "--kind", "b", "--scheduler", "s"])
    assert got == Sample(
        threads=8,
        qps=0.5,
        name="y",
        namespace="ns1",
        fast=True,
        sync=False,
        fmt="text",
        kinds=("a", "b"),
        schedulers=frozenset({"s"}),
    )


def test_environment_defaults_and_env_only_fields() -> None:
    got = parse([], {"NS": "from-env", "DOMAIN": "example.org"})
    assert (got.namespace, got.domain) == ("from-env", "example.org")
    assert parse(["--namespace", "flag"], {"NS": "from-env"}).namespace == "flag"
    assert parse(["--namespace", ""]).namespace is None


def test_a_bad_value_is_refused_naming_the_flag() -> None:
    with pytest.raises(argparse.ArgumentError, match="--threads"):
        parse(["--threads", "many"])
    with pytest.raises(argparse.ArgumentError, match="--fmt"):
        parse(["--fmt", "xml"])


def test_help_shows_each_default_once() -> None:
    parser = argparse.ArgumentParser(prog="t")
    add_flags(parser, Sample, environ={})
    text = parser.format_help()
    assert "workers (default: 4)" in text
    assert "one (repeatable; default: default)" in text
    assert "{json,text}" in text
    assert "--domain" not in text and "--internal" not in text


def test_excluded_fields_keep_their_defaults() -> None:
    parser = argparse.ArgumentParser(prog="t")
    add_flags(parser, Sample, exclude=("threads",), environ={})
    assert "--threads" not in parser.format_help()
    assert options_from_args(Sample, parser.parse_args([]), environ={}).threads == 4


def test_flag_names_must_be_long_options() -> None:
    with pytest.raises(ValueError, match="must start with '--'"):
        flag("threads", "workers")


def test_the_operator_keeps_the_reference_flag_names_and_defaults() -> None:
    from kubetrain.operator import OperatorOptions

    names = {
        f.metadata[FLAG].name: f.default
        for f in dataclasses.fields(OperatorOptions)
        if FLAG in f.metadata and f.metadata[FLAG].name
    }
    assert {
        "--enable-scheme",
        "--controller-threads",
        "--kube-api-qps",
        "--kube-api-burst",
        "--namespace",
        "--leader-elect",
        "--leader-election-id",
        "--metrics-bind-address",
        "--health-probe-bind-address",
        "--webhook-server-port",
        "--gang-scheduler-name",
        "--pytorch-init-container-image",
        "--pytorch-init-container-max-tries",
        "--mpi-kubectl-delivery-image",
    } <= set(names)
    assert names["--leader-election-id"] == "1ca428e5.training-operator.kubeflow.org"
    # The names are the reference's; the defaults are not (no fixed rate: the adaptive limit).
    assert (names["--kube-api-qps"], names["--kube-api-burst"]) == (0.0, 0)


@dataclass(frozen=True, kw_only=True)
class Typed:
    out: Path | None = field(default=None, metadata=flag("--out", "a folder", metavar="DIR"))
    limit: int | None = field(default=None, metadata=flag("--limit", "at most"))
    wait: bool = field(default=False, metadata=flag("--wait", "wait", aliases=("--block",)))


def parse_typed(argv: list[str]) -> Typed:
    parser = argparse.ArgumentParser(prog="t", exit_on_error=False)
    add_flags(parser, Typed, environ={})
    return options_from_args(Typed, parser.parse_args(argv), environ={})


def test_optional_fields_convert_to_their_type_and_empty_is_none() -> None:
    assert parse_typed([]) == Typed()
    assert parse_typed(["--out", "a/b", "--limit", "3"]) == Typed(out=Path("a/b"), limit=3)
    assert parse_typed(["--out", "", "--limit", ""]) == Typed()
    with pytest.raises(argparse.ArgumentError, match=r"--limit.*invalid int value"):
        parse_typed(["--limit", "x"])


def test_an_alias_sets_the_same_field() -> None:
    assert parse_typed(["--block"]).wait is True
    parser = argparse.ArgumentParser(prog="t")
    add_flags(parser, Typed, environ={})
    assert "--wait, --block" in parser.format_help()
    with pytest.raises(ValueError, match="must start with '--'"):
        flag("--wait", "wait", aliases=("-w",))


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("90s", 90.0),
        ("1h30m", 5400.0),
        ("8760h", 8760 * 3600.0),
        ("500ms", 0.5),
        ("2.5", 2.5),
        ("1h0m0s", 3600.0),
        ("0", 0.0),
    ],
)
def test_parse_duration_reads_go_durations_and_seconds(text: str, seconds: float) -> None:
    assert parse_duration(text).total_seconds() == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["", "h", "10x", "1h 30m", "-5s", "-1", "5s3"])
def test_parse_duration_refuses_nonsense(text: str) -> None:
    with pytest.raises(ValueError, match="duration"):
        parse_duration(text)


@pytest.mark.parametrize(
    ("seconds", "text"), [(8760 * 3600, "8760h"), (90, "1m30s"), (5400, "1h30m"), (0.5, "0.5s")]
)
def test_format_duration_round_trips(seconds: float, text: str) -> None:
    value = datetime.timedelta(seconds=seconds)
    assert format_duration(value) == text
    assert parse_duration(format_duration(value)) == value


def test_a_duration_field_gets_a_flag_showing_its_default() -> None:
    @dataclasses.dataclass(frozen=True)
    class Opts:
        lifetime: datetime.timedelta = dataclasses.field(
            default=datetime.timedelta(days=365), metadata=flag("--lifetime", "how long")
        )

    parser = argparse.ArgumentParser()
    add_flags(parser, Opts)
    assert "(default: 8760h)" in parser.format_help()
    assert options_from_args(Opts, parser.parse_args(["--lifetime", "2h"])).lifetime == (
        datetime.timedelta(hours=2)
    )
    with pytest.raises(SystemExit):
        parser.parse_args(["--lifetime", "soon"])
