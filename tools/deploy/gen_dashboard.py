"""Write deploy/monitoring/grafana-dashboard.json: kubetrain's Grafana dashboard.

Why generated: thirty-odd panels of Grafana JSON are easier to keep right as a table of
(title, query, unit) than by hand; tests/deploy/test_monitoring.py checks the file is this
script's output, that every query parses (promtool) and reads metrics an operator exports.

Usage: .venv/bin/python tools/deploy/gen_dashboard.py [OUT ...]  (default: both TARGETS)
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

JOB = 'job="kubetrain-metrics"'

#: (row title, [(panel title, [PromQL, ...], unit, legend)])
ROWS: list[tuple[str, list[tuple[str, list[str], str, str]]]] = [
    (
        "Work queues",
        [
            (
                "Queue depth by controller",
                [f"sum by (name) (workqueue_depth{{{JOB}}})"],
                "short",
                "{{name}}",
            ),
            (
                "Time in queue p99",
                [
                    f"histogram_quantile(0.99, sum by (name, le) (rate(workqueue_queue_duration_seconds_bucket{{{JOB}}}[5m])))"
                ],
                "s",
                "{{name}}",
            ),
            (
                "Work duration p99",
                [
                    f"histogram_quantile(0.99, sum by (name, le) (rate(workqueue_work_duration_seconds_bucket{{{JOB}}}[5m])))"
                ],
                "s",
                "{{name}}",
            ),
            (
                "Retries",
                [f"sum by (name) (rate(workqueue_retries_total{{{JOB}}}[5m]))"],
                "ops",
                "{{name}}",
            ),
        ],
    ),
    (
        "Reconciles",
        [
            (
                "Reconcile rate by result",
                [
                    f"sum by (controller, result) (rate(controller_runtime_reconcile_total{{{JOB}}}[5m]))"
                ],
                "ops",
                "{{controller}} {{result}}",
            ),
            (
                "Reconcile errors",
                [
                    f"sum by (controller) (rate(controller_runtime_reconcile_errors_total{{{JOB}}}[5m]))"
                ],
                "ops",
                "{{controller}}",
            ),
            (
                "Reconcile latency p99",
                [
                    f"histogram_quantile(0.99, sum by (controller, le) (rate(controller_runtime_reconcile_time_seconds_bucket{{{JOB}}}[5m])))"
                ],
                "s",
                "{{controller}}",
            ),
            (
                "Active workers",
                [f"sum by (controller) (controller_runtime_active_workers{{{JOB}}})"],
                "short",
                "{{controller}}",
            ),
        ],
    ),
    (
        "API requests",
        [
            (
                "Requests by verb and code",
                [f"sum by (method, code) (rate(rest_client_requests_total{{{JOB}}}[5m]))"],
                "reqps",
                "{{method}} {{code}}",
            ),
            (
                "Request latency p99 by verb",
                [
                    f"histogram_quantile(0.99, sum by (verb, le) (rate(rest_client_request_duration_seconds_bucket{{{JOB}}}[5m])))"
                ],
                "s",
                "{{verb}}",
            ),
            (
                "Client-side throttling p99",
                [
                    f"histogram_quantile(0.99, sum by (le) (rate(rest_client_rate_limiter_duration_seconds_bucket{{{JOB}}}[5m])))"
                ],
                "s",
                "wait",
            ),
            (
                "429s",
                [f'sum(rate(rest_client_requests_total{{{JOB}, code="429"}}[5m])) or vector(0)'],
                "reqps",
                "429",
            ),
            (
                "Adaptive in-flight limit",
                [f"sum by (client) (kubetrain_client_inflight_limit{{{JOB}}})"],
                "short",
                "{{client}}",
            ),
            (
                "API requests in flight",
                [f"sum by (client) (kubetrain_client_inflight_requests{{{JOB}}})"],
                "short",
                "{{client}}",
            ),
            (
                "Adaptive limit cuts by reason",
                [f"sum by (reason) (rate(kubetrain_client_limit_cuts_total{{{JOB}}}[5m]))"],
                "ops",
                "{{reason}}",
            ),
        ],
    ),
    (
        "Jobs",
        [
            (
                "Jobs by phase and kind",
                [f"sum by (framework, phase) (kubetrain_jobs{{{JOB}}})"],
                "short",
                "{{framework}} {{phase}}",
            ),
            (
                "Jobs created, succeeded, failed",
                [
                    f"sum by (framework) (rate(training_operator_jobs_created_total{{{JOB}}}[5m]))",
                    f"sum by (framework) (rate(training_operator_jobs_successful_total{{{JOB}}}[5m]))",
                    f"sum by (framework) (rate(training_operator_jobs_failed_total{{{JOB}}}[5m]))",
                ],
                "ops",
                "{{framework}}",
            ),
            (
                "Start latency p90 (created to Running)",
                [
                    f"histogram_quantile(0.9, sum by (framework, le) (rate(kubetrain_job_running_seconds_bucket{{{JOB}}}[15m])))"
                ],
                "s",
                "{{framework}}",
            ),
            (
                "Pods created p90 (from job creation)",
                [
                    f"histogram_quantile(0.9, sum by (framework, le) (rate(kubetrain_job_pods_created_seconds_bucket{{{JOB}}}[15m])))"
                ],
                "s",
                "{{framework}}",
            ),
            (
                "Duration p90",
                [
                    f"histogram_quantile(0.9, sum by (framework, outcome, le) (rate(kubetrain_job_duration_seconds_bucket{{{JOB}}}[1h])))"
                ],
                "s",
                "{{framework}} {{outcome}}",
            ),
            (
                "TTL deletion lag p99",
                [
                    f"histogram_quantile(0.99, sum by (le) (rate(kubetrain_job_ttl_deletion_delay_seconds_bucket{{{JOB}}}[15m])))"
                ],
                "s",
                "lag",
            ),
        ],
    ),
    (
        "Operator",
        [
            (
                "Cached objects by resource",
                [f"sum by (resource) (kubetrain_informer_objects{{{JOB}}})"],
                "short",
                "{{resource}}",
            ),
            (
                "Health checks",
                [f"min by (endpoint, check) (kubetrain_health_check{{{JOB}}})"],
                "short",
                "{{endpoint}} {{check}}",
            ),
            (
                "Leader",
                [f"max by (pod) (leader_election_master_status{{{JOB}}})"],
                "short",
                "{{pod}}",
            ),
            (
                "Webhook requests by code",
                [
                    f"sum by (webhook, code) (rate(controller_runtime_webhook_requests_total{{{JOB}}}[5m]))"
                ],
                "reqps",
                "{{webhook}} {{code}}",
            ),
            ("Memory (RSS)", [f"process_resident_memory_bytes{{{JOB}}}"], "bytes", "{{pod}}"),
            ("CPU", [f"rate(process_cpu_seconds_total{{{JOB}}}[5m])"], "short", "{{pod}}"),
        ],
    ),
]


def dashboard() -> dict[str, Any]:
    panels: list[dict[str, Any]] = []
    y = 0
    panel_id = 1
    for row_title, row in ROWS:
        panels.append({"type": "row", "title": row_title, "id": panel_id, "collapsed": False,
                       "gridPos": {"h": 1, "w": 24, "x": 0, "y": y}})  # fmt: skip
        panel_id += 1
        y += 1
        for i, (title, queries, unit, legend) in enumerate(row):
            panels.append(
                {
                    "type": "timeseries",
                    "title": title,
                    "id": panel_id,
                    "datasource": {"type": "prometheus", "uid": "${datasource}"},
                    "gridPos": {"h": 8, "w": 12, "x": 12 * (i % 2), "y": y + 8 * (i // 2)},
                    "fieldConfig": {"defaults": {"unit": unit}, "overrides": []},
                    "targets": [
                        {"refId": chr(ord("A") + n), "expr": q, "legendFormat": legend}
                        for n, q in enumerate(queries)
                    ],
                }
            )
            panel_id += 1
        y += 8 * ((len(row) + 1) // 2)
    return {
        "title": "kubetrain",
        "uid": "kubetrain",
        "tags": ["kubetrain", "kubeflow", "training"],
        "timezone": "browser",
        "schemaVersion": 39,
        "refresh": "30s",
        "time": {"from": "now-3h", "to": "now"},
        "templating": {
            "list": [
                {
                    "name": "datasource",
                    "type": "datasource",
                    "query": "prometheus",
                    "label": "Prometheus",
                }
            ]
        },
        "panels": panels,
    }


def render() -> str:
    return json.dumps(dashboard(), indent=2) + "\n"


#: The dashboard's places: deploy/monitoring and the Helm chart's copy.
TARGETS = (
    "deploy/monitoring/grafana-dashboard.json",
    "deploy/helm/kubetrain/files/grafana-dashboard.json",
)

if __name__ == "__main__":
    for target in sys.argv[1:] or TARGETS:
        Path(target).write_text(render())
        print(target)
