"""The report of a ``kubetrain bench`` run: ``result.json`` (machine, versions, parameters, every
figure and sample), ``summary.md`` (a table per scenario, systems side by side, the ratios
kubetrain/raw, kubetrain/kopf and kubetrain/reference where those ran) and one PNG of latency CDFs per scenario (matplotlib, Agg backend).

``write_report(result, out_dir)`` is pure with respect to the cluster: tests build a result by
hand and check the files.
"""

from __future__ import annotations

import os
import platform
from importlib import metadata
from pathlib import Path
from typing import Any

import orjson

__all__ = ["machine_description", "summary_markdown", "versions", "write_report"]

RATIO_BASES = ("raw", "kopf", "reference")


def machine_description() -> dict[str, Any]:
    """CPU model and count, memory, OS and Python of this machine."""
    cpu_model = ""
    mem_total_kib = None
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            for line in fh:
                if line.startswith("model name"):
                    cpu_model = line.split(":", 1)[1].strip()
                    break
        with open("/proc/meminfo", encoding="utf-8") as fh:
            for line in fh:
                if line.startswith("MemTotal:"):
                    mem_total_kib = int(line.split()[1])
                    break
    except OSError:
        pass
    return {
        "cpu_model": cpu_model or platform.processor(),
        "cpu_count": os.cpu_count(),
        "memory_bytes": None if mem_total_kib is None else mem_total_kib * 1024,
        "platform": platform.platform(),
        "python": platform.python_version(),
    }


def versions() -> dict[str, str | None]:
    out: dict[str, str | None] = {}
    for dist in ("kubetrain", "kopf", "aiohttp", "kubernetes-asyncio", "orjson", "uvloop"):
        try:
            out[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            out[dist] = None
    return out


def _fmt(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.3g}" if abs(value) < 1000 else f"{value:,.0f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def _ratio(a: Any, b: Any) -> str:
    if not isinstance(a, int | float) or not isinstance(b, int | float) or not b:
        return "-"
    return f"{a / b:.2f}"


def summary_markdown(result: dict[str, Any]) -> str:
    """One table per scenario: a row per figure, a column per system, then the ratios."""
    lines = ["# kubetrain bench", ""]
    machine = result.get("machine") or {}
    lines.append(
        f"Machine: {machine.get('cpu_count')} CPUs ({machine.get('cpu_model')}), "
        f"Python {machine.get('python')}; kubetrain {result.get('versions', {}).get('kubetrain')}, "
        f"kopf {result.get('versions', {}).get('kopf')}. Started {result.get('started')}."
    )
    lines.append("")
    for name, scenario in (result.get("scenarios") or {}).items():
        systems = list(scenario["systems"])
        bases = [b for b in RATIO_BASES if b in systems and "kubetrain" in systems]
        params = ", ".join(f"{k}={v}" for k, v in scenario.get("parameters", {}).items())
        lines += [f"## {name}", "", f"Parameters: {params}. Times in seconds.", ""]
        header = ["figure", *systems, *(f"kubetrain/{b}" for b in bases)]
        lines.append("| " + " | ".join(header) + " |")
        lines.append("|" + "---|" * len(header))
        for fig in scenario["figures"]:
            values = [scenario["systems"][s]["figures"].get(fig) for s in systems]
            row = [fig, *(_fmt(v) for v in values)]
            kt = scenario["systems"].get("kubetrain", {}).get("figures", {}).get(fig)
            row += [_ratio(kt, scenario["systems"][b]["figures"].get(fig)) for b in bases]
            lines.append("| " + " | ".join(row) + " |")
        lines.append("")
        for system in systems:
            writes = scenario["systems"][system].get("operator_writes") or {}
            if writes:
                text = ", ".join(f"{k}: {v}" for k, v in writes.items())
                lines.append(f"- {system} writes: {text}")
        for system in systems:
            probe = scenario["systems"][system].get("probe") or {}
            if probe:
                lines.append(f"- {system} tenant probe: " + "; ".join(_probe_phase(probe)))
        lines.append("")
    return "\n".join(lines)


def _probe_phase(probe: dict[str, Any]) -> list[str]:
    """Per phase of the tenant probe: how many samples its percentiles come from."""
    out = []
    for phase, data in probe.items():
        requests = sum(r["count"] for r in data["requests"].values())
        errors = sum(data["errors"].values())
        text = f"{phase} {requests} requests in {data['seconds']:.1f} s"
        if errors or data["skipped"]:
            text += f" ({errors} failed, {data['skipped']} rounds skipped: {data['errors']})"
        out.append(text)
    return out


def _plot(name: str, scenario: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    latencies = scenario["latencies"]
    fig, axes = plt.subplots(1, len(latencies), figsize=(5 * len(latencies), 4), squeeze=False)
    for ax, latency in zip(axes[0], latencies, strict=True):
        for system, data in scenario["systems"].items():
            values = sorted(data["latency_samples"].get(latency) or [])
            if not values:
                continue
            ys = [0.0] + [(i + 1) / len(values) for i in range(len(values))]
            ax.step([values[0], *values], ys, where="post", label=system)
        ax.set_title(latency.replace("_", " "))
        ax.set_xlabel("seconds")
        ax.set_ylabel("fraction of jobs")
        ax.set_ylim(0, 1.02)
        ax.grid(alpha=0.3)
        ax.legend()
    fig.suptitle(f"{name}: latency CDFs")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def _plot_timeseries(name: str, scenario: dict[str, Any], path: Path) -> None:
    """One panel per ``series`` column (sampled over time) and one per latency (per job, by
    arrival time), every system on each panel (churn, soak); a system's ``restarts`` (seconds,
    soak) are dotted vertical lines."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    series = list(scenario.get("series") or [])
    latencies = list(scenario.get("latencies") or [])
    panels = len(series) + len(latencies)
    cols = 3
    rows = -(-panels // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(5 * cols, 3.5 * rows), squeeze=False)
    flat = [ax for row in axes for ax in row]
    for ax, column in zip(flat, series, strict=False):
        for system, data in scenario["systems"].items():
            pts = [
                (r["t"], r[column])
                for r in data.get("timeseries") or []
                if r.get(column) is not None
            ]
            if pts:
                ax.plot([p[0] for p in pts], [p[1] for p in pts], label=system)
            for i, at in enumerate(data.get("restarts") or []):  # soak: operator restarts
                ax.axvline(at, color="grey", ls=":", lw=0.8, label="restart" if i == 0 else None)
        ax.set_title(column.replace("_", " "))
        ax.set_xlabel("seconds")
    for ax, latency in zip(flat[len(series) :], latencies, strict=False):
        for system, data in scenario["systems"].items():
            pts = (data.get("latencies_over_time") or {}).get(latency) or []
            if pts:
                ax.scatter([p[0] for p in pts], [p[1] for p in pts], s=4, label=system)
        ax.set_title(latency.replace("_", " ") + " by arrival")
        ax.set_xlabel("arrival, seconds")
        ax.set_ylabel("seconds")
    for ax in flat:
        ax.grid(alpha=0.3)
        if ax.has_data():
            ax.legend()
    for ax in flat[panels:]:
        ax.set_visible(False)
    fig.suptitle(f"{name}: over time")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def write_report(result: dict[str, Any], out_dir: Path) -> list[Path]:
    """Write result.json, summary.md, ``<scenario>_latency_cdf.png`` and, for a scenario with
    ``series`` (churn), ``<scenario>_over_time.png``; the paths written."""
    out_dir.mkdir(parents=True, exist_ok=True)
    written = [out_dir / "result.json", out_dir / "summary.md"]
    written[0].write_bytes(orjson.dumps(result, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS))
    written[1].write_text(summary_markdown(result), encoding="utf-8")
    for name, scenario in (result.get("scenarios") or {}).items():
        path = out_dir / f"{name}_latency_cdf.png"
        _plot(name, scenario, path)
        written.append(path)
        if scenario.get("series"):
            path = out_dir / f"{name}_over_time.png"
            _plot_timeseries(name, scenario, path)
            written.append(path)
    return written
