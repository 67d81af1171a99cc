"""web/app.py: FastAPI's own OpenTelemetry layer is off unless the operator asks for it
with FastAPI's switch (``FASTAPI_OTEL_AUTO_CONFIGURE=true``), which keeps its defaults."""

from __future__ import annotations

import pytest
from fastapi import FastAPI

from stepup.config import Settings
from stepup.services.runtime import Runtime
from stepup.web.app import create_app


def _switches(app: FastAPI) -> tuple[object, object, object]:
    config = app._native_telemetry.config
    return config["tracing"], config["metrics"], config["logs"]


def test_fastapi_telemetry_is_off_by_default(settings: Settings, runtime: Runtime,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("FASTAPI_OTEL_AUTO_CONFIGURE", raising=False)
    app = create_app(settings, runtime=runtime, migrate_on_start=False)
    assert _switches(app) == (False, False, False)
    assert not app._native_telemetry.enabled()


def test_the_operator_can_turn_fastapi_telemetry_on(settings: Settings, runtime: Runtime,
                                                    monkeypatch: pytest.MonkeyPatch
                                                    ) -> None:
    monkeypatch.setenv("FASTAPI_OTEL_AUTO_CONFIGURE", "true")
    app = create_app(settings, runtime=runtime, migrate_on_start=False)
    assert _switches(app) == (True, True, True)
