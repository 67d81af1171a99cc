"""What every ``stepup`` command shares: the settings, and running one service call with
a runtime built for it (cli.py, cli_keys.py)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, TypeVar

import typer

from stepup.config import ConfigurationError, Settings

if TYPE_CHECKING:
    from stepup.services.runtime import Runtime

T = TypeVar("T")


def settings() -> Settings:
    try:
        loaded = Settings.load()
        loaded.check_production()
    except (ConfigurationError, ValueError) as exc:
        typer.echo(f"stepup: {exc}", err=True)
        raise typer.Exit(2) from exc
    return loaded


def run(settings: Settings, job: Callable[[Runtime], Awaitable[T]]) -> T:
    """Run one service call with a runtime, reporting domain errors plainly."""
    from stepup.domain.errors import DomainError
    from stepup.services.runtime import Runtime
    from stepup.store.migrate import missing_file, schema_problem

    async def go() -> T:
        rt = Runtime.build(settings)
        try:
            return await job(rt)
        finally:
            await rt.engine.dispose()

    # Before anything is built: a command run where there is no database must neither
    # create one (nor a data directory and keys) nor end in a traceback.
    url = settings.effective_database_url
    problem = missing_file(url) or asyncio.run(schema_problem(url))
    if problem is not None:
        typer.echo(f"stepup: {problem}: run `stepup migrate` first, or point "
                   "STEPUP_DATA_DIR / STEPUP_DATABASE_URL at StepUp's database.", err=True)
        raise typer.Exit(1)
    try:
        return asyncio.run(go())
    except DomainError as exc:
        typer.echo(f"stepup: {exc.detail}", err=True)
        raise typer.Exit(1) from exc
    except ConfigurationError as exc:
        typer.echo(f"stepup: {exc}", err=True)
        raise typer.Exit(2) from exc
