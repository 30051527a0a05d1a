"""CertWatcher: a serving certificate from ``tls.crt``/``tls.key`` files, reloaded when they change.

The callback used in most tests loads each pair into a real server SSL context (as
``WebhookServer.use_certificate`` does), so a pair that does not load is refused the same way
it would be in the operator. ``run()`` is driven by a ``FakeClock``: no test waits on time.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import Callable
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry
from tlsprobe import served_serial

from kubetrain.base.clock import FakeClock
from kubetrain.engine.webhook.certs import (
    CertificateAuthority,
    ServerCertificate,
    make_ca,
    server_ssl_context,
)
from kubetrain.engine.webhook.certwatcher import CertWatcher
from kubetrain.engine.webhook.server import WebhookServer, WebhookServerOptions

LOGGER = "kubetrain.engine.webhook.certwatcher"


@pytest.fixture(scope="module")
def ca() -> CertificateAuthority:
    return make_ca("certwatcher-test-ca")


class Loader:
    """Loads every pair into a server SSL context (raises ``CertificateError`` like the server);
    ``accepted`` lists the pairs that loaded."""

    def __init__(self) -> None:
        self.ctx = server_ssl_context()
        self.accepted: list[ServerCertificate] = []
        self.calls = 0

    def __call__(self, cert: ServerCertificate) -> None:
        self.calls += 1
        cert.load_into(server_ssl_context())  # refuse before touching the kept context
        cert.load_into(self.ctx)
        self.accepted.append(cert)


def write_pair(directory: Path, cert: ServerCertificate, *, crt: str = "tls.crt") -> None:
    (directory / crt).write_bytes(cert.cert_pem)
    (directory / "tls.key").write_bytes(cert.key_pem)


def errors(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [
        r.getMessage() for r in caplog.records if r.name == LOGGER and r.levelno >= logging.ERROR
    ]


def test_loads_a_pair_and_calls_back(tmp_path: Path, ca: CertificateAuthority) -> None:
    cert = ca.issue_server_cert()
    write_pair(tmp_path, cert)
    loader = Loader()
    watcher = CertWatcher(tmp_path, loader)
    assert watcher.cert_path == tmp_path / "tls.crt"
    assert watcher.key_path == tmp_path / "tls.key"
    assert watcher.load() is True
    assert loader.accepted == [cert]
    assert watcher.reloads == 1


def test_unchanged_files_do_not_call_again(tmp_path: Path, ca: CertificateAuthority) -> None:
    cert = ca.issue_server_cert()
    write_pair(tmp_path, cert)
    loader = Loader()
    watcher = CertWatcher(str(tmp_path), loader)
    assert watcher.load() is True
    assert watcher.load() is False
    # rewritten with the same bytes (a new mtime): still nothing new
    write_pair(tmp_path, cert)
    os.utime(tmp_path / "tls.crt", (1, 1))
    assert watcher.load() is False
    assert loader.calls == 1 and watcher.reloads == 1


def test_replaced_files_call_again(tmp_path: Path, ca: CertificateAuthority) -> None:
    first, second = ca.issue_server_cert(), ca.issue_server_cert()
    write_pair(tmp_path, first)
    loader = Loader()
    watcher = CertWatcher(tmp_path, loader)
    assert watcher.load()
    write_pair(tmp_path, second)
    assert watcher.load() is True
    assert loader.accepted == [first, second]
    assert watcher.reloads == 2
    assert not watcher.load()


def test_missing_file_is_logged_once_and_nothing_is_called(
    tmp_path: Path, ca: CertificateAuthority, caplog: pytest.LogCaptureFixture
) -> None:
    loader = Loader()
    watcher = CertWatcher(tmp_path, loader)
    with caplog.at_level(logging.ERROR, logger=LOGGER):
        assert watcher.load() is False
        assert watcher.load() is False
        assert watcher.load() is False
    assert loader.calls == 0
    assert len(errors(caplog)) == 1
    assert "cannot read the webhook certificate" in errors(caplog)[0]
    # the files appear: loaded
    write_pair(tmp_path, ca.issue_server_cert())
    assert watcher.load() is True
    assert len(loader.accepted) == 1


def test_missing_key_keeps_the_previous_certificate(
    tmp_path: Path, ca: CertificateAuthority, caplog: pytest.LogCaptureFixture
) -> None:
    cert = ca.issue_server_cert()
    write_pair(tmp_path, cert)
    loader = Loader()
    watcher = CertWatcher(tmp_path, loader)
    assert watcher.load()
    (tmp_path / "tls.key").unlink()
    with caplog.at_level(logging.ERROR, logger=LOGGER):
        assert watcher.load() is False
        assert watcher.load() is False
    assert len(errors(caplog)) == 1
    assert loader.accepted == [cert] and loader.calls == 1
    # the same pair coming back is not "new"
    write_pair(tmp_path, cert)
    assert watcher.load() is False
    assert loader.calls == 1


def test_mismatched_pair_is_logged_once_and_the_previous_one_kept(
    tmp_path: Path, ca: CertificateAuthority, caplog: pytest.LogCaptureFixture
) -> None:
    old, new = ca.issue_server_cert(), ca.issue_server_cert()
    write_pair(tmp_path, old)
    loader = Loader()
    watcher = CertWatcher(tmp_path, loader)
    assert watcher.load()
    # half-written: the new key is there, the certificate is still the old one
    (tmp_path / "tls.key").write_bytes(new.key_pem)
    with caplog.at_level(logging.ERROR, logger=LOGGER):
        assert watcher.load() is False
        assert watcher.load() is False
        assert watcher.load() is False
    assert loader.accepted == [old]
    assert watcher.reloads == 1
    logged = errors(caplog)
    assert len(logged) == 1 and "does not load" in logged[0]
    # the certificate follows: the pair loads
    (tmp_path / "tls.crt").write_bytes(new.cert_pem)
    assert watcher.load() is True
    assert loader.accepted == [old, new]


def test_garbage_files_are_refused(
    tmp_path: Path, ca: CertificateAuthority, caplog: pytest.LogCaptureFixture
) -> None:
    (tmp_path / "tls.crt").write_bytes(b"garbage")
    (tmp_path / "tls.key").write_bytes(b"garbage")
    loader = Loader()
    watcher = CertWatcher(tmp_path, loader)
    with caplog.at_level(logging.ERROR, logger=LOGGER):
        assert watcher.load() is False
    assert loader.accepted == [] and watcher.reloads == 0
    assert len(errors(caplog)) == 1


def test_the_same_error_is_logged_again_after_a_success(
    tmp_path: Path, ca: CertificateAuthority, caplog: pytest.LogCaptureFixture
) -> None:
    loader = Loader()
    watcher = CertWatcher(tmp_path, loader)
    with caplog.at_level(logging.ERROR, logger=LOGGER):
        watcher.load()  # missing: logged
        write_pair(tmp_path, ca.issue_server_cert())
        assert watcher.load()
        (tmp_path / "tls.crt").unlink()
        (tmp_path / "tls.key").unlink()
        watcher.load()  # missing again: logged again (a new episode)
        watcher.load()
    assert len(errors(caplog)) == 2


def test_distinct_errors_are_each_logged(
    tmp_path: Path, ca: CertificateAuthority, caplog: pytest.LogCaptureFixture
) -> None:
    a, b = ca.issue_server_cert(), ca.issue_server_cert()
    loader = Loader()
    watcher = CertWatcher(tmp_path, loader)
    with caplog.at_level(logging.ERROR, logger=LOGGER):
        watcher.load()  # missing
        (tmp_path / "tls.crt").write_bytes(a.cert_pem)
        (tmp_path / "tls.key").write_bytes(b.key_pem)
        watcher.load()  # mismatched
        watcher.load()
    assert len(errors(caplog)) == 2


def test_custom_file_names(tmp_path: Path, ca: CertificateAuthority) -> None:
    cert = ca.issue_server_cert()
    (tmp_path / "serving.pem").write_bytes(cert.cert_pem)
    (tmp_path / "serving-key.pem").write_bytes(cert.key_pem)
    loader = Loader()
    watcher = CertWatcher(tmp_path, loader, cert_name="serving.pem", key_name="serving-key.pem")
    assert watcher.load()
    assert loader.accepted == [cert]


def test_kubelet_style_symlink_swap_is_seen(tmp_path: Path, ca: CertificateAuthority) -> None:
    """kubelet updates a mounted Secret by re-pointing ``..data``; file names stay the same."""
    first, second = ca.issue_server_cert(), ca.issue_server_cert()
    v1, v2 = tmp_path / "..v1", tmp_path / "..v2"
    v1.mkdir()
    v2.mkdir()
    write_pair(v1, first)
    write_pair(v2, second)
    (tmp_path / "..data").symlink_to(v1.name)
    (tmp_path / "tls.crt").symlink_to("..data/tls.crt")
    (tmp_path / "tls.key").symlink_to("..data/tls.key")
    loader = Loader()
    watcher = CertWatcher(tmp_path, loader)
    assert watcher.load()
    tmp_link = tmp_path / "..data_tmp"
    tmp_link.symlink_to(v2.name)
    os.replace(tmp_link, tmp_path / "..data")
    assert watcher.load() is True
    assert loader.accepted == [first, second]


async def settle(condition: Callable[[], bool], turns: int = 200) -> None:
    """Let the loop run (no wall-clock wait) until ``condition``."""
    for _ in range(turns):
        if condition():
            return
        await asyncio.sleep(0)
    raise AssertionError("condition not met")


async def test_run_polls_on_the_clock(tmp_path: Path, ca: CertificateAuthority) -> None:
    first, second = ca.issue_server_cert(), ca.issue_server_cert()
    write_pair(tmp_path, first)
    loader = Loader()
    clock = FakeClock()
    watcher = CertWatcher(tmp_path, loader, poll_interval=5.0, clock=clock)
    task = asyncio.create_task(watcher.run())
    try:
        # loads at once, then sleeps on the clock
        await settle(lambda: watcher.reloads == 1 and clock.pending_timers() == 1)
        assert clock.next_deadline() == 5.0
        write_pair(tmp_path, second)
        clock.advance(4.9)
        for _ in range(20):
            await asyncio.sleep(0)
        assert loader.accepted == [first]  # not polled yet
        clock.advance(0.1)
        await settle(lambda: watcher.reloads == 2 and clock.pending_timers() == 1)
        assert loader.accepted == [first, second]
        assert clock.next_deadline() == 10.0
        # nothing changed: the next polls call nothing
        clock.advance(5.0)
        await settle(lambda: clock.next_deadline() == 15.0)
        clock.advance(5.0)
        await settle(lambda: clock.next_deadline() == 20.0)
        assert loader.calls == 2
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    assert task.cancelled()
    assert clock.pending_timers() == 0


async def test_run_keeps_polling_through_errors(tmp_path: Path, ca: CertificateAuthority) -> None:
    loader = Loader()
    clock = FakeClock()
    watcher = CertWatcher(tmp_path, loader, poll_interval=1.0, clock=clock)
    task = asyncio.create_task(watcher.run())
    try:
        await settle(lambda: clock.pending_timers() == 1)
        assert loader.calls == 0  # nothing there yet
        cert = ca.issue_server_cert()
        write_pair(tmp_path, cert)
        clock.advance(1.0)
        await settle(lambda: watcher.reloads == 1)
        assert loader.accepted == [cert]
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


# -- with the webhook server -----------------------------------------------------------------------


async def test_watcher_feeds_the_webhook_server(tmp_path: Path, ca: CertificateAuthority) -> None:
    server = WebhookServer(
        WebhookServerOptions(host="127.0.0.1", port=0), registry=CollectorRegistry()
    )
    await server.start()
    try:
        first, second = ca.issue_server_cert(), ca.issue_server_cert()
        write_pair(tmp_path, first)
        watcher = CertWatcher(tmp_path, server.use_certificate)
        assert watcher.load()
        server.check_ready()
        assert await served_serial(server.port, ca.cert_pem) == first.certificate.serial_number
        write_pair(tmp_path, second)
        assert watcher.load()
        assert await served_serial(server.port, ca.cert_pem) == second.certificate.serial_number
        assert server.certificate == second
    finally:
        await server.stop()


async def test_key_written_first_keeps_the_server_serving_the_previous_certificate(
    tmp_path: Path, ca: CertificateAuthority
) -> None:
    server = WebhookServer(
        WebhookServerOptions(host="127.0.0.1", port=0), registry=CollectorRegistry()
    )
    await server.start()
    try:
        old, new = ca.issue_server_cert(), ca.issue_server_cert()
        write_pair(tmp_path, old)
        watcher = CertWatcher(tmp_path, server.use_certificate)
        assert watcher.load()
        (tmp_path / "tls.key").write_bytes(new.key_pem)  # the key of the next pair first
        assert watcher.load() is False
        assert server.certificate == old
        assert await served_serial(server.port, ca.cert_pem) == old.certificate.serial_number
        (tmp_path / "tls.crt").write_bytes(new.cert_pem)  # then its certificate
        assert watcher.load() is True
        assert await served_serial(server.port, ca.cert_pem) == new.certificate.serial_number
    finally:
        await server.stop()


async def test_half_written_pair_keeps_the_server_serving_the_previous_certificate(
    tmp_path: Path, ca: CertificateAuthority
) -> None:
    """The module's promise: "A half-written pair ... does not load and is retried on the next
    poll; the previous certificate stays in use meanwhile". Here the new certificate is written
    before its key (the other order, new key first, happens to keep working)."""
    server = WebhookServer(
        WebhookServerOptions(host="127.0.0.1", port=0), registry=CollectorRegistry()
    )
    await server.start()
    try:
        old, new = ca.issue_server_cert(), ca.issue_server_cert()
        write_pair(tmp_path, old)
        watcher = CertWatcher(tmp_path, server.use_certificate)
        assert watcher.load()
        (tmp_path / "tls.crt").write_bytes(new.cert_pem)
        assert watcher.load() is False
        assert server.certificate == old
        assert await served_serial(server.port, ca.cert_pem) == old.certificate.serial_number
    finally:
        await server.stop()
