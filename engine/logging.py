"""Operator logging: JSON or text lines, a level per logger, and the reconcile's identity on
every line.

Thousands of reconciles interleave on one event loop, so a log line is only useful if it says
which controller, key and reconcile call it belongs to. The controller binds those three in a
``contextvars`` context around each reconcile (``reconcile_context``); asyncio copies the context
into tasks the reconciler starts, so every line logged inside the call, by any logger (ours, the
API client's, a library's), carries ``controller``, ``key`` and ``reconcile_id`` without being
passed around. ``ReconcileContextFilter`` copies them onto each ``LogRecord``; the formatters print
them. ``configure_logging`` installs all of it on the root logger (``kubetrain operator
--log-format json --log-level info --log-levels kubetrain.engine=debug``).
"""

from __future__ import annotations

import contextlib
import contextvars
import logging
import sys
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal, TextIO

import orjson

__all__ = [
    "CONTEXT_FIELDS",
    "JsonFormatter",
    "LogContext",
    "ReconcileContextFilter",
    "TextFormatter",
    "configure_logging",
    "current_log_context",
    "parse_level",
    "parse_log_levels",
    "reconcile_context",
]

LogFormat = Literal["json", "text"]

#: Record attributes set by ``ReconcileContextFilter`` (None outside a reconcile).
CONTEXT_FIELDS = ("controller", "key", "reconcile_id")

_LEVELS = {
    "trace": 5,
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warning": logging.WARNING,
    "warn": logging.WARNING,
    "error": logging.ERROR,
    "critical": logging.CRITICAL,
}

# Attributes every LogRecord has; anything else on a record came from ``extra=`` and is printed.
_STANDARD_ATTRS = frozenset(
    vars(logging.LogRecord("", 0, "", 0, "", (), None)).keys()
    | {"message", "asctime", "taskName", *CONTEXT_FIELDS}
)


@dataclass(frozen=True, slots=True)
class LogContext:
    """Who is logging: the reconcile in progress in this asyncio context."""

    controller: str
    key: str
    reconcile_id: str


_context: contextvars.ContextVar[LogContext | None] = contextvars.ContextVar(
    "kubetrain_log_context", default=None
)


def current_log_context() -> LogContext | None:
    """The reconcile bound in the current context, or None outside any reconcile."""
    return _context.get()


@contextlib.contextmanager
def reconcile_context(*, controller: str, key: str, reconcile_id: str) -> Iterator[LogContext]:
    """Bind a reconcile's identity for every log line inside the ``with`` (and tasks it starts)."""
    bound = LogContext(controller, key, reconcile_id)
    token = _context.set(bound)
    try:
        yield bound
    finally:
        _context.reset(token)


class ReconcileContextFilter(logging.Filter):
    """Sets ``record.controller``/``key``/``reconcile_id`` from the current context.

    Attach it to *handlers* (``configure_logging`` does): a filter on a logger only sees records
    created by that very logger. Values given explicitly with ``extra=`` are kept.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        bound = _context.get()
        attrs = record.__dict__
        if bound is None:
            for name in CONTEXT_FIELDS:
                attrs.setdefault(name, None)
        else:
            attrs.setdefault("controller", bound.controller)
            attrs.setdefault("key", bound.key)
            attrs.setdefault("reconcile_id", bound.reconcile_id)
        return True


def _timestamp(record: logging.LogRecord) -> str:
    return datetime.fromtimestamp(record.created, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _extras(record: logging.LogRecord) -> dict[str, Any]:
    return {k: v for k, v in record.__dict__.items() if k not in _STANDARD_ATTRS}


class JsonFormatter(logging.Formatter):
    """One JSON object per line (orjson): ``ts, level, logger, msg``, then ``controller``,
    ``key``, ``reconcile_id`` when bound, ``extra=`` fields, and ``error`` with the traceback.

    Values orjson cannot encode are written with ``str()``.
    """

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": _timestamp(record),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for name in CONTEXT_FIELDS:
            value = getattr(record, name, None)
            if value is not None:
                entry[name] = value
        entry.update(_extras(record))
        if record.exc_info:
            entry["error"] = self.formatException(record.exc_info)
        elif record.exc_text:
            entry["error"] = record.exc_text
        if record.stack_info:
            entry["stack"] = self.formatStack(record.stack_info)
        return orjson.dumps(entry, default=str).decode()


class TextFormatter(logging.Formatter):
    """``ts LEVEL logger msg controller=... key=... reconcile_id=... extra=...`` for humans."""

    def format(self, record: logging.LogRecord) -> str:
        parts = [_timestamp(record), f"{record.levelname:<7}", record.name, record.getMessage()]
        for name in CONTEXT_FIELDS:
            value = getattr(record, name, None)
            if value is not None:
                parts.append(f"{name}={value}")
        parts.extend(f"{k}={v}" for k, v in _extras(record).items())
        line = " ".join(parts)
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        if record.stack_info:
            line += "\n" + self.formatStack(record.stack_info)
        return line


def parse_level(value: str | int) -> int:
    """A level from a name (``debug``, ``INFO``, ``trace``...) or a number.

    Raises ``ValueError`` naming the allowed names.
    """
    if isinstance(value, int):
        return value
    text = value.strip().lower()
    if text.isdigit():
        return int(text)
    try:
        return _LEVELS[text]
    except KeyError:
        raise ValueError(
            f"unknown log level {value!r}; use one of {', '.join(_LEVELS)} or a number"
        ) from None


def parse_log_levels(spec: str) -> dict[str, int]:
    """``"kubetrain.engine=debug,aiohttp=warning"`` -> ``{"kubetrain.engine": 10, ...}``.

    Empty entries are ignored. Raises ``ValueError`` naming the bad entry and the expected form.
    """
    levels: dict[str, int] = {}
    for entry in spec.split(","):
        entry = entry.strip()
        if not entry:
            continue
        name, sep, level = entry.partition("=")
        if not sep or not name.strip():
            raise ValueError(
                f"--log-levels entry {entry!r} must be LOGGER=LEVEL, "
                "e.g. kubetrain.engine=debug,kubetrain.informers=warning"
            )
        try:
            levels[name.strip()] = parse_level(level)
        except ValueError as e:
            raise ValueError(f"--log-levels entry {entry!r}: {e}") from None
    return levels


def configure_logging(
    *,
    level: str | int = "info",
    levels: Mapping[str, str | int] | str = "",
    fmt: LogFormat = "json",
    stream: TextIO | None = None,
) -> logging.Handler:
    """Send every log record to ``stream`` (default stderr) in ``fmt``, with the reconcile fields.

    ``level`` is the root level; ``levels`` sets levels per logger (a mapping or the
    ``--log-levels`` string). Replaces handlers previously installed by this function (so it may
    be called again, e.g. in tests); other root handlers are left alone. Returns the handler.
    """
    if fmt not in ("json", "text"):
        raise ValueError(f"log format must be 'json' or 'text', got {fmt!r}")
    per_logger = parse_log_levels(levels) if isinstance(levels, str) else levels
    root = logging.getLogger()
    for old in [h for h in root.handlers if getattr(h, "_kubetrain", False)]:
        root.removeHandler(old)
    handler = logging.StreamHandler(stream if stream is not None else sys.stderr)
    handler._kubetrain = True  # type: ignore[attr-defined]
    handler.addFilter(ReconcileContextFilter())
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    root.addHandler(handler)
    root.setLevel(parse_level(level))
    for name, value in per_logger.items():
        logging.getLogger(name).setLevel(parse_level(value))
    return handler
