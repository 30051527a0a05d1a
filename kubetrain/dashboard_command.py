"""``kubetrain dashboard``: the job dashboard in the browser, with the user's kubeconfig.

Like ``kubectl proxy`` it is a local tool: it reads through shared informers and acts with the
credentials of the kubeconfig it is given, and has no login of its own (bind it to loopback).
docs/dashboard.md is the contract; ``kubetrain.dashboard`` the server.
"""

from __future__ import annotations

import argparse
import asyncio
import sys

from kubetrain.dashboard import Dashboard, DashboardOptions
from kubetrain.dashboard.options import DEFAULT_BIND
from kubetrain.engine.client import ApiClient
from kubetrain.engine.config import load_kubeconfig
from kubetrain.engine.logging import configure_logging
from kubetrain.engine.loop import install_signal_handlers

__all__ = ["add_dashboard_flags", "options_from_args", "run_dashboard"]


def add_dashboard_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--kubeconfig", default=None, help="kubeconfig (default: $KUBECONFIG, ~/.kube)")
    p.add_argument(
        "--bind",
        default=DEFAULT_BIND,
        metavar="HOST:PORT",
        help="where to listen (default: %(default)s; port 0 picks a free one); no login: keep "
        "it on loopback or behind your own proxy",
    )
    p.add_argument(
        "-n",
        "--namespace",
        default=None,
        help="watch one namespace (default: every namespace your credentials can list)",
    )
    p.add_argument(
        "--read-only", action="store_true", help="no actions: submit, suspend, delete answer 403"
    )
    p.add_argument(
        "--metrics-url",
        default=None,
        metavar="URL",
        help="the operator's /metrics, scraped for the operator view",
    )
    p.add_argument(
        "--metrics-interval",
        type=float,
        default=5.0,
        metavar="SECONDS",
        help="seconds between scrapes of --metrics-url (default: %(default)s)",
    )
    p.add_argument("--log-level", default="warning", help="log level (default: %(default)s)")
    p.set_defaults(main=run_dashboard)


def options_from_args(args: argparse.Namespace) -> DashboardOptions:
    """The options of parsed ``add_dashboard_flags`` flags; ValueError naming a bad one."""
    return DashboardOptions(
        bind=args.bind,
        namespace=args.namespace or None,
        read_only=args.read_only,
        metrics_url=args.metrics_url or None,
        metrics_interval=args.metrics_interval,
    )


async def run_dashboard(args: argparse.Namespace) -> int:
    """Serve until Ctrl-C (status 0); 1 when it cannot start."""
    try:
        options = options_from_args(args)
    except ValueError as exc:
        print(f"kubetrain dashboard: error: {exc}", file=sys.stderr, flush=True)
        return 1
    configure_logging(level=args.log_level, fmt="text")
    config = await load_kubeconfig(args.kubeconfig)
    stop = asyncio.Event()
    remove = install_signal_handlers(stop.set)
    try:
        async with ApiClient(config) as client:
            dashboard = Dashboard(client, options)
            try:
                try:
                    url = await dashboard.start()
                except OSError as exc:  # the address is taken, or not ours
                    print(f"kubetrain dashboard: error: {exc}", file=sys.stderr, flush=True)
                    return 1
                for warning in dashboard.warnings:
                    print(f"kubetrain dashboard: warning: {warning}", file=sys.stderr, flush=True)
                print(f"kubetrain dashboard serving at {url} (Ctrl-C stops it)", flush=True)
                await stop.wait()
            finally:
                await dashboard.stop()
    finally:
        remove()
    return 0
