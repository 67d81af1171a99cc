"""Prometheus metrics: request latency per route, verifications by method and outcome,
messages by channel and outcome, delivery reports, locks by scope, the operator's
hourly budget of billed codes, and SQLite's write turn (waited for, held).

With several worker processes (``stepup serve --workers N``) prometheus-client's
multiprocess mode is used: each worker writes its samples under
``PROMETHEUS_MULTIPROC_DIR`` and ``/metrics`` aggregates them, whichever worker answers.
"""

from __future__ import annotations

import os
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
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
DELIVERY_REPORTS = Counter(
    "stepup_delivery_reports_total", "Delivery reports posted by providers",
    ["provider", "status"])  # the provider's status word, or refused
# The hourly budget of billed codes, SMS, WhatsApp, … (STEPUP_SMS_BUDGET_PER_HOUR) as of
# the last code sent:
# the counter lives in the database, so whichever worker sent last knows it best.
SMS_BUDGET_USED = Gauge(
    "stepup_sms_budget_used_ratio", "Share of this hour's budget of billed codes used",
    multiprocess_mode="mostrecent")
SMS_BUDGET_CHARGED = Counter(
    "stepup_sms_budget_messages_total", "Codes counted against the budget of billed codes",
    ["outcome"])  # charged, refused

# SQLite's writers take turns (store/sqlite_turn.py): how long each write transaction of
# a worker waited for its turn (0 when it was free) and how long it then held it. A pair
# of workers can write at most 1 / (time held) transactions a second; waits growing
# toward the time held mean the turn, not the cores, bounds them (bench/README.md).
SQLITE_WRITE_TURN_WAIT = Histogram(
    "stepup_sqlite_write_turn_wait_seconds",
    "Time a SQLite write transaction waited for another worker's write turn",
    buckets=(0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.1, 1, 5, 30))
SQLITE_WRITE_TURN_HELD = Histogram(
    "stepup_sqlite_write_turn_held_seconds",
    "Time a SQLite write transaction held the write turn",
    buckets=(0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.1, 1, 5))

# The histogram's child per (method, route template, status): ``labels()`` checks and
# joins its arguments on every call; routes and statuses are few, so they are kept.
_request_children: dict[tuple[str, str, int], Any] = {}


def request_took(method: str, route: str, status: int, seconds: float) -> None:
    key = (method, route, status)
    child = _request_children.get(key)
    if child is None:
        child = _request_children[key] = REQUESTS.labels(method=method, route=route,
                                                         status=str(status))
    child.observe(seconds)


def write_turn(waited: float, held: float) -> None:
    """A SQLite write transaction's turn: waited for, then held (seconds)."""
    SQLITE_WRITE_TURN_WAIT.observe(waited)
    SQLITE_WRITE_TURN_HELD.observe(held)


def verification(method: str, outcome: str) -> None:
    VERIFICATIONS.labels(method=method, outcome=outcome).inc()


def message(channel: str, provider: str, outcome: str) -> None:
    MESSAGES.labels(channel=channel, provider=provider, outcome=outcome).inc()


def delivery_report(provider: str, status: str) -> None:
    DELIVERY_REPORTS.labels(provider=provider, status=status).inc()


def lock(scope: str) -> None:
    LOCKS.labels(scope=scope).inc()


def sms_budget(used: int, budget: int, outcome: str) -> None:
    SMS_BUDGET_CHARGED.labels(outcome=outcome).inc()
    if outcome == "charged":
        SMS_BUDGET_USED.set(used / budget)


def exposition() -> tuple[bytes, str]:
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        _multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        return generate_latest(registry), CONTENT_TYPE_LATEST
    return generate_latest(), CONTENT_TYPE_LATEST
