"""Delivery reports: what a provider tells us, later, about a message it carried.

A provider that reports (``delivery.base.ReportsDelivery``) posts to
``/hooks/delivery/{provider}``; the provider itself checks the report's signature, so
only it can post one. An accepted report is logged and counted
(``stepup_delivery_reports_total``); nothing is stored: a code's life does not depend
on whether its message was read. A refused one answers ``not_authenticated``.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

from stepup import metrics
from stepup.delivery.base import DeliveryReport, ReportRefused
from stepup.domain.errors import NotAuthenticated, NotFound
from stepup.services.runtime import Runtime

log = logging.getLogger("stepup.delivery")

# The statuses counted by name; any other word a provider may add is counted as "other",
# so a metric label never takes an unbounded set of values.
STATUSES = frozenset({"sent", "delivered", "read", "expired", "revoked", "failed",
                      "undelivered"})


async def receive(rt: Runtime, provider: str, headers: Mapping[str, str], body: bytes
                  ) -> DeliveryReport:
    reporter = rt.delivery.reporting(provider)
    if reporter is None:
        raise NotFound("No provider by that name posts delivery reports here.")
    try:
        report = reporter.delivery_report(
            {k.lower(): v for k, v in headers.items()}, body, rt.clock.now())
    except ReportRefused as exc:
        metrics.delivery_report(reporter.name, "refused")
        log.warning("a delivery report for %s was refused: %s", reporter.name, exc)
        raise NotAuthenticated("The delivery report's signature is not valid.") from exc
    status = report.status if report.status in STATUSES else "other"
    metrics.delivery_report(report.provider, status)
    log.info("delivery report from %s: code %s (their %s) is %s", report.provider,
             report.reference, report.provider_reference, report.status)
    return report
