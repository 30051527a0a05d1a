"""Logging: JSON/text formatting, per-logger levels, and reconcile fields on every line."""

from __future__ import annotations

import asyncio
import io
import logging
from collections.abc import Iterator

import orjson
import pytest
from prometheus_client import CollectorRegistry

from kubetrain.base.clock import FakeClock
from kubetrain.engine.controller import Controller, ControllerOptions
from kubetrain.engine.logging import (
    JsonFormatter,
    ReconcileContextFilter,
    configure_logging,
    current_log_context,
    parse_level,
    parse_log_levels,
    reconcile_context,
)
from kubetrain.engine.reconcile import Request, Result


@pytest.fixture
def restore_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    named = {n: logging.getLogger(n).level for n in ("kubetrain.engine", "aiohttp", "t")}
    yield
    root.handlers[:] = handlers
    root.setLevel(level)
    for name, value in named.items():
        logging.getLogger(name).setLevel(value)


def lines(stream: io.StringIO) -> list[dict[str, object]]:
    return [orjson.loads(line) for line in stream.getvalue().splitlines()]


def test_parse_levels() -> None:
    assert parse_level("DEBUG") == logging.DEBUG
    assert parse_level("warn") == logging.WARNING
    assert parse_level("trace") == 5
    assert parse_level("15") == 15
    assert parse_log_levels(" kubetrain.engine=debug, aiohttp=warning,") == {
        "kubetrain.engine": logging.DEBUG,
        "aiohttp": logging.WARNING,
    }
    with pytest.raises(ValueError, match="LOGGER=LEVEL"):
        parse_log_levels("kubetrain.engine")
    with pytest.raises(ValueError, match=r"'aiohttp=loud'.*unknown log level"):
        parse_log_levels("aiohttp=loud")


def test_json_lines_with_levels_per_logger(restore_logging: None) -> None:
    stream = io.StringIO()
    configure_logging(level="warning", levels="kubetrain.engine=debug", fmt="json", stream=stream)
    logging.getLogger("kubetrain.engine.x").debug("shown %d", 1, extra={"job": "ns/a"})
    logging.getLogger("t").info("hidden: root is warning")
    try:
        raise ValueError("boom")
    except ValueError:
        logging.getLogger("t").exception("failed")
    first, second = lines(stream)
    assert first["msg"] == "shown 1" and first["level"] == "debug"
    assert first["logger"] == "kubetrain.engine.x" and first["job"] == "ns/a"
    assert "controller" not in first  # outside a reconcile
    assert second["level"] == "error" and "ValueError: boom" in str(second["error"])


def test_configure_again_replaces_its_own_handler(restore_logging: None) -> None:
    first, second = io.StringIO(), io.StringIO()
    configure_logging(stream=first)
    configure_logging(fmt="text", stream=second)
    logging.getLogger("t").warning("once")
    assert first.getvalue() == ""
    assert "WARNING t once" in second.getvalue()
    with pytest.raises(ValueError, match="json"):
        configure_logging(fmt="xml")  # type: ignore[arg-type]


async def test_context_is_copied_into_tasks_and_reset_after() -> None:
    seen: list[object] = []

    async def child() -> None:
        seen.append(current_log_context())

    with reconcile_context(controller="c", key="ns/a", reconcile_id="r1") as bound:
        await asyncio.create_task(child())
    assert seen == [bound]
    assert current_log_context() is None


async def test_every_line_of_a_reconcile_carries_controller_key_and_id(
    restore_logging: None,
) -> None:
    stream = io.StringIO()
    configure_logging(level="info", fmt="json", stream=stream)
    log = logging.getLogger("t")

    async def helper_task(request: Request) -> None:
        log.info("from a task the reconciler started")

    async def reconcile(request: Request) -> Result:
        log.info("reconciling")
        await asyncio.create_task(helper_task(request))
        if request.name == "bad":
            raise RuntimeError("cannot")
        return Result()

    controller = Controller(
        "jobs",
        reconcile,
        options=ControllerOptions(clock=FakeClock(), registry=CollectorRegistry()),
    )
    task = asyncio.create_task(controller.run())
    controller.queue.add("ns/a")
    controller.queue.add("ns/bad")
    for _ in range(30):
        await asyncio.sleep(0)
    await controller.stop(timeout=1.0)
    await task
    records = [r for r in lines(stream) if r["logger"] in ("t", "kubetrain.engine.controller")]
    in_reconcile = [r for r in records if r["msg"] != "Starting workers"]
    assert len(in_reconcile) == 5  # 2 + 2 lines, and the error
    for record in in_reconcile:
        assert record["controller"] == "jobs"
        assert record["key"] in ("ns/a", "ns/bad")
        assert isinstance(record["reconcile_id"], str) and len(record["reconcile_id"]) == 12
    ids = {record["key"]: record["reconcile_id"] for record in in_reconcile}
    assert ids["ns/a"] != ids["ns/bad"]
    error = next(r for r in in_reconcile if r["level"] == "error")
    assert error["key"] == "ns/bad" and "RuntimeError: cannot" in str(error["error"])


def test_filter_keeps_explicit_extra_values() -> None:
    record = logging.LogRecord("t", logging.INFO, "", 0, "m", (), None)
    record.controller = "explicit"
    with reconcile_context(controller="c", key="k", reconcile_id="r"):
        ReconcileContextFilter().filter(record)
    assert (record.controller, record.key, record.reconcile_id) == ("explicit", "k", "r")
    out = orjson.loads(JsonFormatter().format(record))
    assert out["controller"] == "explicit" and out["key"] == "k"
