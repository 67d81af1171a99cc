"""Entry point for uvicorn workers: ``stepup.web.factory:app`` (a factory)."""

from __future__ import annotations

import gc

from fastapi import FastAPI

from stepup.web.app import create_app


def app() -> FastAPI:
    # serve has migrated already; each worker only checks.
    built = create_app(migrate_on_start=False)
    # What is alive now (modules, mappers, routes) lives as long as the worker: kept out
    # of the cyclic collector's full passes, which otherwise walk it all again and
    # again under load and show as latency spikes.
    gc.collect()
    gc.freeze()
    return built
