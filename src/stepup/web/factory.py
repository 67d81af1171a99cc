"""Entry point for uvicorn workers: ``stepup.web.factory:app`` (a factory)."""

from __future__ import annotations

from fastapi import FastAPI

from stepup.web.app import create_app


def app() -> FastAPI:
    # serve has migrated already; each worker only checks.
    return create_app(migrate_on_start=False)
