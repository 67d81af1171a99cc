"""The ``stepup`` command: serve, migrate."""

from __future__ import annotations

import asyncio
import os
import shutil
import sys
import time
from typing import TYPE_CHECKING, Any

import typer
import uvicorn

from stepup.cli_common import run as _run
from stepup.cli_common import settings as _settings
from stepup.cli_keys import keys_app
from stepup.config import ConfigurationError, Settings

if TYPE_CHECKING:
    from stepup.store.sqlite_resident import Resident

app = typer.Typer(no_args_is_help=True, add_completion=False,
                  help="StepUp: multi-factor authentication for client portals.")


@app.command()
def serve(host: str = typer.Option("127.0.0.1", help="Address to listen on."),
          port: int = typer.Option(8000, help="Port to listen on."),
          workers: int = typer.Option(1, min=1, help="Worker processes."),
          access_log: bool = typer.Option(
              True, "--access-log/--no-access-log",
              help="Log a line per request (uvicorn's access log; the audit log is kept "
                   "either way). Behind a proxy that logs requests, turning it off saves "
                   "CPU.")) -> None:
    """Create or upgrade the embedded schema, then serve the portal and the API."""
    settings = _settings()
    from stepup.services import rekey
    from stepup.services.runtime import Runtime
    from stepup.web import workers as worker_processes
    from stepup.web.app import prepare_schema

    # Several workers: this process listens and deals them the connections in turn
    # (web/workers.py).
    listener = None
    if workers > 1 and worker_processes.supported():
        try:
            listener = worker_processes.listening_socket(host, port)
        except OSError as exc:
            typer.echo(f"stepup: cannot listen on {host}:{port}: {exc.strerror}", err=True)
            raise typer.Exit(2) from exc

    async def prepare() -> None:
        rt = Runtime.build(settings)
        try:
            await prepare_schema(rt)
            await rekey.apply_retirements(rt)  # a retired active key: say so before serving
        finally:
            await rt.engine.dispose()

    try:
        asyncio.run(prepare())
    except (ConfigurationError, RuntimeError) as exc:
        typer.echo(f"stepup: {exc}", err=True)
        raise typer.Exit(2) from exc
    if workers > 1 and not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        # Each worker writes its metrics here; /metrics adds them up, whoever answers.
        metrics_dir = settings.data_dir / "metrics"
        shutil.rmtree(metrics_dir, ignore_errors=True)
        metrics_dir.mkdir(parents=True)
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(metrics_dir)
    typer.echo(f"StepUp serving on http://{host}:{port} ({settings.env}, "
               f"{settings.effective_database_url.split('://')[0]}); "
               f"the portal is {settings.public_url}")
    # The standard library's event loop, not uvloop: a busy uvloop worker accepted one
    # new connection per turn of its loop, so the 32nd of 32 connections opened at once
    # waited a second for its first answer (bench/README.md, "The c = 32 tail"), and it
    # served StepUp's requests no faster.
    options: dict[str, Any] = {"proxy_headers": False, "server_header": False,
                               "timeout_graceful_shutdown": 20, "log_level": "info",
                               "access_log": access_log, "loop": "asyncio"}
    if listener is None:
        uvicorn.run(worker_processes.APP, factory=True, host=host, port=port,
                    workers=workers, **options)
        return
    # Only a supervisor keeps the file in memory: it runs no SQLite connection, whose
    # locks a close of the file in the same process would drop (store/sqlite_resident.py).
    resident = _keep_resident(settings)
    try:
        raise typer.Exit(worker_processes.Supervisor(listener, workers, options).run())
    finally:
        if resident is not None:
            resident.close()


def _keep_resident(settings: Settings) -> Resident | None:
    """On SQLite, the database file held in memory by this process (the supervisor)."""
    from stepup.store.sqlite_connection import shared_file
    from stepup.store.sqlite_resident import Resident

    path = shared_file(settings.effective_database_url)
    if path is None or not settings.sqlite_resident_mb:
        return None
    resident = Resident(path, settings.sqlite_resident_mb * 2**20)
    began = time.monotonic()
    held = resident.start()
    typer.echo(f"Keeping {held / 2**20:.0f} MB of {path} in memory "
               f"(mapped in {time.monotonic() - began:.1f} s; STEPUP_SQLITE_RESIDENT_MB)")
    return resident


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
                what: str = typer.Option(
                    "all", help="all, account, pin, password (login throttle), or a method"),
                app_name: str = typer.Option("portal", "--app",
                                             help="The app the user belongs to")) -> None:
    """Lift the locks that guessing put on an account (audited)."""
    from stepup.services import support
    from stepup.services.runtime import Actor

    scopes = _run(_settings(), lambda rt: support.unlock(rt, Actor(name="cli"), email, what,
                                                         app=app_name))
    typer.echo(f"unlocked {email}: {', '.join(scopes)}")


apps_app = typer.Typer(no_args_is_help=True, help="Apps: the portals that embed StepUp.")
app.add_typer(apps_app, name="app")


@apps_app.command("create")
def app_create(name: str,
               display_name: str = typer.Option(None, help="Shown to the app's users"),
               url: str = typer.Option(None, help="The portal's address"),
               sends_per_hour: int = typer.Option(
                   None, help="Codes per hour for all its users (default: the setting)")
               ) -> None:
    """Create an app; its keys (`stepup apikey create --app NAME`) see only its users."""
    from stepup.services import apps
    from stepup.services.runtime import Actor

    row = _run(_settings(), lambda rt: apps.create(
        rt, Actor(name="cli"), name, display_name=display_name, url=url,
        sends_per_hour=sends_per_hour))
    typer.echo(f"id:   {row.id}\nname: {row.name}\n(the id is the `aud` of its receipts)")


STDIN = "-"


@apps_app.command("set")
def app_set(name: str,
            display_name: str = typer.Option(None, help="Shown to the app's users"),
            url: str = typer.Option(None, help="The portal's address ('' removes it)"),
            sends_per_hour: int = typer.Option(
                None, help="Codes per hour for all its users (0: the setting)"),
            webhook_url: str = typer.Option(
                None, help="Where its webhook events go ('' removes it: then "
                           "STEPUP_WEBHOOK_URL, if set)"),
            webhook_secret: str = typer.Option(
                None, help="Signs its webhooks, at least 16 characters ('-': read a line "
                           "from standard input, kept out of the shell history)"),
            notices: str = typer.Option(
                None, help="on, or off: StepUp sends its users no security notices but "
                           "the recovery ones (the portal tells them from the webhooks)")
            ) -> None:
    """Change an app; only the options given change (audited, without the values)."""
    from stepup.services import apps
    from stepup.services.runtime import Actor

    if notices is not None and notices not in ("on", "off"):
        typer.echo("stepup: --notices is on or off", err=True)
        raise typer.Exit(2)
    if webhook_secret == STDIN:
        webhook_secret = sys.stdin.readline().rstrip("\r\n")
    row = _run(_settings(), lambda rt: apps.configure(
        rt, Actor(name="cli"), name, display_name=display_name, url=url,
        sends_per_hour=sends_per_hour, webhook_url=webhook_url, webhook_secret=webhook_secret,
        notices=None if notices is None else notices == "on"))
    typer.echo(f"name:     {row.name}\ndisplay:  {row.display_name}\n"
               f"url:      {row.url or '-'}\nwebhook:  {row.webhook_url or '- (the global one)'}"
               f"\nnotices:  {'on' if row.notices else 'off (recovery notices still go out)'}")


@apps_app.command("list")
def app_list() -> None:
    """List the apps (``portal`` is StepUp's own pages); never a webhook secret."""
    from stepup.services import apps

    for a in _run(_settings(), apps.list_all):
        budget = f"{a.sends_per_hour}/h" if a.sends_per_hour else "default"
        hook = "own" if a.webhook_url else "global"
        typer.echo(f"{a.id:32}  {a.name:20} sends {budget:9} webhook {hook:6} "
                   f"notices {'on ' if a.notices else 'off'} {a.display_name}"
                   f"{'  ' + a.url if a.url else ''}")


apikey_app = typer.Typer(no_args_is_help=True, help="API keys for portals and support.")
app.add_typer(apikey_app, name="apikey")
app.add_typer(keys_app, name="keys")  # cli_keys.py


@apikey_app.command("create")
def apikey_create(role: str = typer.Option(..., help="app or support"),
                  app_name: str = typer.Option(
                      None, "--app", help="Role app: the app whose users it sees "
                                          "(default: 'default', made on first use)"),
                  name: str = typer.Option("default", help="Who uses the key"),
                  scope: list[str] = typer.Option(
                      [], help="users, methods, verify, operations (repeat; none: all)"),
                  rate: int = typer.Option(6000, help="Calls allowed per minute")) -> None:
    """Create an API key; it is printed once and stored only as a hash."""
    from stepup.services import apikeys
    from stepup.services.runtime import Actor

    row, token = _run(_settings(), lambda rt: apikeys.create(
        rt, name, role, Actor(name="cli"), scopes=scope, rate_per_minute=rate, app=app_name))
    scopes = ", ".join(row.scopes) or "all"
    typer.echo(f"id:     {row.id}\nrole:   {row.role}\napp:    {app_name or row.app_id or '-'}\n"
               f"scopes: {scopes}\n"
               f"rate:   {row.rate_per_minute}/min\nkey:    {token}\n"
               "Store the key now: it cannot be shown again.")


@apikey_app.command("list")
def apikey_list() -> None:
    """List API keys (never the keys themselves)."""
    from datetime import UTC, datetime

    from stepup.services import apikeys, apps

    settings = _settings()
    names = {a.id: a.name for a in _run(settings, apps.list_all)}
    def utc(when: datetime | None) -> str:
        return f"{when.astimezone(UTC):%Y-%m-%d %H:%M} UTC" if when else "never"

    typer.echo(f"{'id':16}  {'role':7}  {'app':16}  {'scopes':28}  {'rate/min':>8}  "
               f"{'created':20}  {'last used':20}  {'state':26}  name")
    for k in _run(settings, apikeys.list_keys):
        state = f"revoked {utc(k.revoked_at)}" if k.revoked_at else "active"
        app_name = names.get(k.app_id, "-") if k.app_id else "-"
        scopes = ",".join(k.scopes) or "all"
        typer.echo(f"{k.id:16}  {k.role:7}  {app_name:16}  {scopes:28}  "
                   f"{k.rate_per_minute:>8}  {utc(k.created_at):20}  {utc(k.last_used_at):20}  "
                   f"{state:26}  {k.name}")


@apikey_app.command("revoke")
def apikey_revoke(key_id: str) -> None:
    """Revoke an API key at once."""
    from stepup.services import apikeys
    from stepup.services.runtime import Actor

    _run(_settings(), lambda rt: apikeys.revoke(rt, key_id, Actor(name="cli")))
    typer.echo(f"revoked {key_id}")


bench_app = typer.Typer(no_args_is_help=True, help="Benchmark helpers.")
app.add_typer(bench_app, name="bench")


@bench_app.command("seed")
def bench_seed(users: int = typer.Option(10_000, min=1, help="How many users to create"),
               tokens: str = typer.Option("tokens.csv", help="Append id,secret lines here"),
               app_name: str = typer.Option(None, "--app",
                                            help="Their app (default: 'default')"),
               signed_up_from: str = typer.Option(
                   "127.0.0.1", help="The address their accounts were made from: logins "
                   "from it are from a known device ('' for none: every login from a new "
                   "device, each told to its user)")) -> None:
    """Create users with an authenticator app quickly (benchmarks only)."""
    from pathlib import Path

    from stepup.services import seed

    made = _run(_settings(), lambda rt: seed.seed_totp_users(
        rt, users, Path(tokens), app=app_name, signed_up_from=signed_up_from or None))
    typer.echo(f"created {made} users with TOTP; secrets in {tokens}")


@bench_app.command("login-flows")
def bench_login_flows(tokens: str = typer.Option("tokens.csv", help="Seeded id,secret lines"),
                      out: str = typer.Option("flows.csv", help="Write login_token,secret here"),
                      count: int = typer.Option(10_000, min=1, help="How many flows")) -> None:
    """Open login flows for seeded users, as passed passwords would (benchmarks only)."""
    from pathlib import Path

    from stepup.services import seed

    made = _run(_settings(), lambda rt: seed.seed_login_flows(rt, Path(tokens), Path(out),
                                                               count))
    typer.echo(f"opened {made} login flows; tokens in {out}")


staff_app = typer.Typer(no_args_is_help=True, help="Support staff of the console (/admin).")
app.add_typer(staff_app, name="staff")


@staff_app.command("create")
def staff_create(email: str = typer.Option(..., help="The staff member's e-mail (login)"),
                 name: str = typer.Option(..., help="Full name, shown in the audit log"),
                 role: str = typer.Option(..., help="support or supervisor"),
                 password: str = typer.Option(
                     ..., envvar="STEPUP_STAFF_PASSWORD", prompt=True, hide_input=True,
                     confirmation_prompt=True, help="Or STEPUP_STAFF_PASSWORD; else asked")
                 ) -> None:
    """Create a staff account and its authenticator app (the QR code is shown once)."""
    import segno

    from stepup.services import staff
    from stepup.services.runtime import Actor

    made = _run(_settings(), lambda rt: staff.create(rt, Actor(name="cli"), email=email,
                                                        name=name, role=role,
                                                        password=password))
    typer.echo(f"id:     {made.staff.id}\nemail:  {made.staff.email}\n"
               f"role:   {made.staff.role}\nsecret: {made.secret}\n"
               f"uri:    {made.otpauth_uri}")
    typer.echo("Scan this with the staff member's authenticator app (shown once):")
    segno.make(made.otpauth_uri, error="m").terminal(compact=True)


@staff_app.command("list")
def staff_list() -> None:
    """List staff accounts."""
    from stepup.services import staff

    for s in _run(_settings(), staff.list_all):
        state = f"disabled {s.disabled_at:%Y-%m-%d}" if s.disabled_at else "active"
        typer.echo(f"{s.id}  {s.role:10} {state:19} {s.email}  {s.name}")


@staff_app.command("disable")
def staff_disable(email: str) -> None:
    """Disable a staff account and end its sessions at once (audited)."""
    from stepup.services import staff
    from stepup.services.runtime import Actor

    _run(_settings(), lambda rt: staff.disable(rt, Actor(name="cli"), email))
    typer.echo(f"disabled {email}")


audit_app = typer.Typer(no_args_is_help=True, help="The audit log and its hash chains.")
app.add_typer(audit_app, name="audit")


@audit_app.command("verify")
def audit_verify() -> None:
    """Check every hash chain of the audit log; exit 1 naming the first broken link."""
    from stepup.services import audit

    report = _run(_settings(), audit.verify)
    if report.ok:
        typer.echo(f"OK: {report.events} events in {report.chains} chains, every link intact")
        return
    first = report.first
    typer.echo(f"BROKEN: {first}", err=True)
    for other in report.breaks:
        if other is not first:
            typer.echo(f"also broken: {other}", err=True)
    raise typer.Exit(1)


def main() -> None:  # pragma: no cover
    sys.exit(app())


if __name__ == "__main__":
    main()
