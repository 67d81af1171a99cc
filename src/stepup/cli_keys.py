"""``stepup keys``: the receipt signing keys, and the key ring that seals data at rest
(the runbook is in docs/deployment.md, "Key rotation")."""

from __future__ import annotations

from typing import TYPE_CHECKING

import typer

from stepup.cli_common import run, settings

if TYPE_CHECKING:
    from stepup.services.runtime import Runtime

keys_app = typer.Typer(no_args_is_help=True,
                       help="Receipt signing keys and the key ring for data at rest.")


@keys_app.command("rotate-receipts")
def keys_rotate_receipts() -> None:
    """Sign receipts with a new Ed25519 key; older keys stay published until retired."""
    from stepup.services import receipts

    typer.echo(f"receipts are now signed with {run(settings(), receipts.rotate)}")


@keys_app.command("retire-receipts")
def keys_retire_receipts(kid: str) -> None:
    """Stop publishing an old receipt key (receipts it signed no longer verify)."""
    from stepup.services import receipts

    run(settings(), lambda rt: receipts.retire(rt, kid))
    typer.echo(f"retired {kid}")


@keys_app.command("list-receipts")
def keys_list_receipts() -> None:
    """The published receipt keys (JWKS)."""
    import json

    from stepup.services import receipts

    typer.echo(json.dumps(run(settings(), receipts.jwks), indent=2))


@keys_app.command("new-data-key")
def keys_new_data_key(kid: str = typer.Option(
        None, help="Its id (default: k and today's date, as k20261122)")) -> None:
    """Print a new key for STEPUP_KEYRING (kid:base64); nothing is stored."""
    from datetime import UTC, datetime

    from stepup.domain.keyring import KeyRing, KeyRingError

    kid = kid or f"k{datetime.now(UTC):%Y%m%d}"
    try:
        spec = KeyRing.parse(KeyRing.generate_spec(kid)).spec()
    except KeyRingError as exc:
        typer.echo(f"stepup: {exc}", err=True)
        raise typer.Exit(1) from exc
    typer.echo(spec)
    typer.echo("Put it first in STEPUP_KEYRING, keep the old keys after it, restart every "
               "StepUp process, then run `stepup keys rotate-data`.", err=True)


@keys_app.command("list-data")
def keys_list_data() -> None:
    """The key ring's ids (the active one first) and how many values each seals."""
    from stepup.services import rekey

    s = settings()

    async def job(rt: Runtime) -> tuple[tuple[str, ...], dict[str, dict[str, int]]]:
        await rekey.apply_retirements(rt)
        return rt.keyring.kids, await rekey.census(rt)

    kids, counts = run(s, job)
    source = "the keys file" if rekey.uses_dev_keys(s) else "STEPUP_KEYRING"
    typer.echo(f"key ring ({source}): {kids[0]} (active)"
               + "".join(f", {k}" for k in kids[1:]))
    for name, per_kid in counts.items():
        typer.echo(f"{name:32} {_per_kid(per_kid, kids)}")


@keys_app.command("rotate-data")
def keys_rotate_data(
        batch: int = typer.Option(500, min=1, help="Rows per transaction"),
        new_key: bool = typer.Option(
            False, "--new-key", help="Development keys file: put a new key (dev2, dev3...) "
                                     "first, then re-encrypt")) -> None:
    """Re-encrypt every sealed value with the active key (the first of the ring).

    Safe while StepUp serves; run it again to go on after an interruption."""
    from stepup.services import rekey
    from stepup.services.runtime import Actor

    s = settings()
    if new_key and not rekey.uses_dev_keys(s):
        typer.echo("stepup: --new-key edits the development keys file, but STEPUP_KEYRING "
                   "is set: put a new key first there (`stepup keys new-data-key`), restart, "
                   "and run `stepup keys rotate-data`.", err=True)
        raise typer.Exit(1)
    actor = Actor(name="cli")

    async def job(rt: Runtime) -> tuple[str | None, tuple[str, ...], rekey.Rotation]:
        added = await rekey.add_dev_key(rt, actor) if new_key else None
        done = await rekey.rotate(rt, actor, batch)
        return added, rt.keyring.kids, done

    added, kids, done = run(s, job)
    if added:
        typer.echo(f"added key {added} in front of the keys file's ring (back the file up); "
                   "restart `stepup serve` if it runs, so it reads the new key")
    typer.echo(f"active key: {done.active}")
    for c in done.columns:
        notes = [f"rewritten meanwhile {c.changed}"] if c.changed else []
        notes += [f"key {k} not in the ring {n}" for k, n in sorted(c.unknown.items())]
        notes += [f"did not open {c.unopened}"] if c.unopened else []
        typer.echo(f"{c.name:32} re-encrypted {c.resealed:>7}   now: "
                   f"{_per_kid(c.remaining, kids)}" + "".join(f"; {n}" for n in notes))
    left = done.left_behind
    if left:
        typer.echo(f"{sum(left.values())} values remain on other keys "
                   f"({_per_kid(left, kids)}): run again, or see docs/deployment.md")
    else:
        old = [k for k in kids if k != done.active]
        hint = (f"; retire the old keys with `stepup keys retire-data {old[0]}`"
                if old else "")
        typer.echo(f"every sealed value is on {done.active}{hint}")


@keys_app.command("retire-data")
def keys_retire_data(kid: str) -> None:
    """Retire a key of the ring that nothing is sealed with any more (audited).

    No StepUp process decrypts with it again. Refused while values use it, or if it is
    the active key."""
    from stepup.services import rekey
    from stepup.services.runtime import Actor

    s = settings()
    done = run(s, lambda rt: rekey.retire(rt, Actor(name="cli"), kid))
    typer.echo(f"retired {kid}" if done.newly else f"{kid} was already retired")
    if done.dev_file is not None:
        typer.echo(f"removed {kid} from {done.dev_file}")
    elif not rekey.uses_dev_keys(s):
        typer.echo(f"remove {kid} from STEPUP_KEYRING and restart StepUp: a process that "
                   "starts drops it anyway, one already running holds it until restarted")


def _per_kid(counts: dict[str, int], kids: tuple[str, ...]) -> str:
    """``k2 5 (active), k1 1, old 2 (not in the ring)``: the ring's order, then others."""
    if not any(counts.values()):
        return "none"
    order = [k for k in kids if k in counts] + sorted(k for k in counts if k not in kids)
    notes = {kids[0]: " (active)"} if kids else {}
    return ", ".join(f"{k} {counts[k]}{notes.get(k, '' if k in kids else ' (not in the ring)')}"
                     for k in order)
