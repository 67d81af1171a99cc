"""The ``stepup`` command: serve, migrate."""

from __future__ import annotations

import asyncio
import sys

import typer
import uvicorn

from stepup.config import ConfigurationError, Settings

app = typer.Typer(no_args_is_help=True, add_completion=False,
                  help="StepUp: multi-factor authentication for client portals.")


def _settings() -> Settings:
    try:
        settings = Settings.load()
        settings.check_production()
    except (ConfigurationError, ValueError) as exc:
        typer.echo(f"stepup: {exc}", err=True)
        raise typer.Exit(2) from exc
    return settings


@app.command()
def serve(host: str = typer.Option("127.0.0.1", help="Address to listen on."),
          port: int = typer.Option(8000, help="Port to listen on."),
          workers: int = typer.Option(1, min=1, help="Worker processes.")) -> None:
    """Create or upgrade the embedded schema, then serve the portal and the API."""
    settings = _settings()
    from stepup.services.runtime import Runtime
    from stepup.web.app import prepare_schema

    async def prepare() -> None:
        rt = Runtime.build(settings)
        try:
            await prepare_schema(rt)
        finally:
            await rt.engine.dispose()

    try:
        asyncio.run(prepare())
    except (ConfigurationError, RuntimeError) as exc:
        typer.echo(f"stepup: {exc}", err=True)
        raise typer.Exit(2) from exc
    typer.echo(f"StepUp serving on http://{host}:{port} ({settings.env}, "
               f"{settings.effective_database_url.split('://')[0]})")
    uvicorn.run("stepup.web.factory:app", factory=True, host=host, port=port,
                workers=workers, proxy_headers=False, server_header=False,
                timeout_graceful_shutdown=20, log_level="info")


@app.command()
def migrate() -> None:
    """Upgrade the database schema to the current version."""
    settings = _settings()
    from stepup.services.runtime import Runtime
    from stepup.store import migrate as mig

    async def run() -> str | None:
        rt = Runtime.build(settings)
        try:
            await mig.upgrade(rt.engine)
            return await mig.current_revision(rt.engine)
        finally:
            await rt.engine.dispose()

    rev = asyncio.run(run())
    typer.echo(f"schema at revision {rev}")


user_app = typer.Typer(no_args_is_help=True, help="Accounts, for support staff.")
app.add_typer(user_app, name="user")


@user_app.command("unlock")
def user_unlock(email: str,
                what: str = typer.Option("all", help="all, account, pin, or a method type")
                ) -> None:
    """Lift the locks that guessing put on an account (audited)."""
    settings = _settings()
    from stepup.domain.errors import DomainError
    from stepup.services import support
    from stepup.services.runtime import Actor, Runtime

    async def run() -> list[str]:
        rt = Runtime.build(settings)
        try:
            return await support.unlock(rt, Actor(name="cli"), email, what)
        finally:
            await rt.engine.dispose()

    try:
        scopes = asyncio.run(run())
    except DomainError as exc:
        typer.echo(f"stepup: {exc.detail}", err=True)
        raise typer.Exit(1) from exc
    typer.echo(f"unlocked {email}: {', '.join(scopes)}")


def main() -> None:  # pragma: no cover
    sys.exit(app())


if __name__ == "__main__":
    main()
