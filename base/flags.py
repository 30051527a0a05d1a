"""Command-line flags declared once, on the options dataclass they fill.

A field's ``metadata=flag(...)`` names its flag and says what it does; ``add_flags`` generates the
argparse arguments (type, default, choices, help with the default) from the field, and
``options_from_args`` builds the options back from the parsed namespace. So a flag's name, default
and help are written in one place, next to the field they set, and cannot drift apart.

Supported field types: ``bool`` (a switch; ``negatable=True`` adds ``--no-X``), ``int``,
``float``, ``str``, ``Path``, any of those ``| None`` (an empty value means None),
``Literal[...]`` of strings (choices), ``tuple[str, ...]`` (a repeatable flag),
``frozenset[str]`` (repeatable, set) and ``datetime.timedelta`` (a Go duration such as ``90s``,
``1h30m`` or ``8760h``, or plain seconds).
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import os
import re
import types
import typing
from collections.abc import Callable, Collection, Mapping
from pathlib import Path
from typing import Any, Literal, TypeVar, Union

__all__ = ["FLAG", "add_flags", "flag", "format_duration", "options_from_args", "parse_duration"]

#: The ``dataclasses.field(metadata=...)`` key that holds a field's ``Flag``.
FLAG = "kubetrain.flag"

T = TypeVar("T")

#: Field types whose flag takes one value, converted by the type itself.
_SCALARS: tuple[type[Any], ...] = (str, int, float, Path)


@dataclasses.dataclass(frozen=True, slots=True)
class Flag:
    """How one options field appears on the command line (see ``flag``)."""

    name: str | None
    help: str
    metavar: str | None = None
    env: str | None = None
    negatable: bool = False
    show_default: bool = True
    aliases: tuple[str, ...] = ()


def flag(
    name: str | None,
    help: str,
    *,
    metavar: str | None = None,
    env: str | None = None,
    negatable: bool = False,
    show_default: bool = True,
    aliases: tuple[str, ...] = (),
) -> dict[str, Flag]:
    """Field metadata declaring the flag ``name`` (``--like-this``) for the field.

    ``env``: an environment variable that, when set and not empty, replaces the field's default
    (with ``name`` None the field is read from the environment only). ``negatable``: a bool flag
    also gets ``--no-<name>``. ``show_default``: append ``(default: ...)`` to the help.
    ``aliases``: other names of the same flag.
    """
    for option in (name, *aliases):
        if option is not None and not option.startswith("--"):
            raise ValueError(f"flag name must start with '--', got {option!r}")
    if aliases and name is None:
        raise ValueError(f"flag aliases {aliases!r} need a flag name")
    return {FLAG: Flag(name, help, metavar, env, negatable, show_default, aliases)}


def _flags_of(cls: type[Any]) -> list[tuple[dataclasses.Field[Any], Flag, Any]]:
    hints = typing.get_type_hints(cls)
    out = []
    for f in dataclasses.fields(cls):
        spec = f.metadata.get(FLAG)
        if isinstance(spec, Flag):
            out.append((f, spec, hints[f.name]))
    return out


def _default(f: dataclasses.Field[Any], spec: Flag, environ: Mapping[str, str]) -> Any:
    if spec.env and environ.get(spec.env):
        return environ[spec.env]
    if f.default is not dataclasses.MISSING:
        return f.default
    if f.default_factory is not dataclasses.MISSING:
        return f.default_factory()
    raise TypeError(f"option {f.name} has a flag but no default")


def _optional_of(tp: Any) -> Any:
    """``X`` of a field type ``X | None``; None for any other type."""
    if typing.get_origin(tp) not in (Union, types.UnionType):
        return None
    args = [a for a in typing.get_args(tp) if a is not type(None)]
    return args[0] if len(args) == 1 and len(typing.get_args(tp)) == 2 else None


def _none_if_empty(convert: type[Any]) -> Callable[[str], Any]:
    """An argparse ``type`` for an ``X | None`` field: empty text is None, else ``X(text)``."""

    def parse(text: str) -> Any:
        return None if text == "" else convert(text)

    parse.__name__ = convert.__name__  # argparse's error says "invalid int value"
    return parse


_DURATION_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h)")
_DURATION_UNITS = {
    "ns": 1e-9,
    "us": 1e-6,
    "µs": 1e-6,
    "ms": 1e-3,
    "s": 1.0,
    "m": 60.0,
    "h": 3600.0,
}


def parse_duration(text: str) -> datetime.timedelta:
    """A Go duration (``300ms``, ``90s``, ``1h30m``, ``8760h``) or plain seconds (``2.5``).

    Raises ``ValueError`` (argparse turns it into a usage error) for anything else or a
    negative value."""
    text = text.strip()
    try:
        seconds = float(text)
    except ValueError:
        pos, seconds = 0, 0.0
        for m in _DURATION_PART.finditer(text):
            if m.start() != pos:
                break
            seconds += float(m.group(1)) * _DURATION_UNITS[m.group(2)]
            pos = m.end()
        if pos != len(text) or not text:
            raise ValueError(f"invalid duration {text!r} (e.g. 90s, 1h30m, 8760h)") from None
    if seconds < 0:
        raise ValueError(f"invalid duration {text!r}: must not be negative")
    return datetime.timedelta(seconds=seconds)


def format_duration(value: datetime.timedelta) -> str:
    """``value`` as a Go duration (``8760h0m0s`` is written ``8760h``; ``90s``; ``1h30m``)."""
    total = value.total_seconds()
    hours, rest = divmod(total, 3600)
    minutes, seconds = divmod(rest, 60)
    parts = [f"{int(hours)}h" if hours else "", f"{int(minutes)}m" if minutes else ""]
    if seconds or not (hours or minutes):
        parts.append(f"{seconds:g}s")
    return "".join(parts)


def add_flags(
    parser: argparse.ArgumentParser,
    cls: type[Any],
    *,
    exclude: Collection[str] = (),
    environ: Mapping[str, str] = os.environ,
) -> None:
    """Declare on ``parser`` the flag of every field of dataclass ``cls`` that has one, except
    the fields named in ``exclude`` (a command that declares that flag its own way)."""
    for f, spec, tp in _flags_of(cls):
        if spec.name is None or f.name in exclude:
            continue
        default = _default(f, spec, environ)
        help_text = spec.help
        metavar = spec.metavar or spec.name.lstrip("-").replace("-", "_").upper()
        default_shown = False
        kwargs: dict[str, Any] = {"dest": f.name, "metavar": metavar}
        origin = typing.get_origin(tp)
        optional = _optional_of(tp)
        if tp is bool:
            kwargs["action"] = argparse.BooleanOptionalAction if spec.negatable else "store_true"
            del kwargs["metavar"]
        elif origin is Literal:
            kwargs["choices"] = typing.get_args(tp)
            kwargs["metavar"] = spec.metavar  # None: argparse shows the choices
        elif origin in (tuple, frozenset):
            kwargs["action"] = "append"
            shown = ", ".join(sorted(default)) if default else "none"
            help_text += (
                f" (repeatable; default: {shown})" if spec.show_default else " (repeatable)"
            )
            default = None  # appended values replace the default, see options_from_args
        elif tp is datetime.timedelta:
            kwargs["type"] = parse_duration
            if spec.show_default and default is not None:
                help_text += f" (default: {format_duration(default)})"
                default_shown = True
        elif tp in _SCALARS:
            kwargs["type"] = tp
        elif optional in _SCALARS:
            kwargs["type"] = _none_if_empty(optional)
        else:
            raise TypeError(f"option {f.name}: no flag for type {tp!r}")
        if (
            spec.show_default
            and default is not None
            and not default_shown
            and "%(default)" not in help_text
        ):
            help_text += " (default: %(default)s)"
        parser.add_argument(spec.name, *spec.aliases, default=default, help=help_text, **kwargs)


def options_from_args(
    cls: type[T],
    args: argparse.Namespace,
    *,
    environ: Mapping[str, str] = os.environ,
    **overrides: Any,
) -> T:
    """An instance of dataclass ``cls`` from ``add_flags``' parsed ``args``; fields read from
    the environment only (``flag(None, env=...)``) too; a flag missing from ``args`` leaves its
    field's default. ``overrides`` win over all."""
    values: dict[str, Any] = {}
    for f, spec, tp in _flags_of(cls):
        if spec.name is None:
            if spec.env and environ.get(spec.env):
                values[f.name] = environ[spec.env]
            continue
        if not hasattr(args, f.name):
            continue
        value = getattr(args, f.name)
        origin = typing.get_origin(tp)
        if origin in (tuple, frozenset):
            if value is None:
                continue  # not given: the field's default
            value = origin(value)
        values[f.name] = value
    values.update(overrides)
    return cls(**values)
