"""Prometheus metrics: request latency per route, verifications by method and outcome,
messages by channel and outcome, locks by scope.

With several worker processes (``stepup serve --workers N``) prometheus-client's
multiprocess mode is used: each worker writes its samples under
``PROMETHEUS_MULTIPROC_DIR`` and ``/metrics`` aggregates them, whichever worker answers.
"""

from __future__ import annotations

import os

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
)
from prometheus_client import multiprocess as _multiprocess

REQUESTS = Histogram(
    "stepup_request_seconds", "HTTP request latency", ["method", "route", "status"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5))
VERIFICATIONS = Counter(
    "stepup_verifications_total", "Security code and PIN checks", ["method", "outcome"])
MESSAGES = Counter(
    "stepup_messages_total", "Messages handed to a provider", ["channel", "provider", "outcome"])
LOCKS = Counter("stepup_locks_total", "Locks caused by guessing", ["scope"])


def verification(method: str, outcome: str) -> None:
    VERIFICATIONS.labels(method=method, outcome=outcome).inc()


def message(channel: str, provider: str, outcome: str) -> None:
    MESSAGES.labels(channel=channel, provider=provider, outcome=outcome).inc()


def lock(scope: str) -> None:
    LOCKS.labels(scope=scope).inc()


def exposition() -> tuple[bytes, str]:
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        _multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        return generate_latest(registry), CONTENT_TYPE_LATEST
    return generate_latest(), CONTENT_TYPE_LATEST
