"""docs/integration.md runs: every fenced code block of the guide, in order, against a
live ``stepup serve``, so the guide cannot drift from the product.

How blocks run:

- ```` ```sh ```` (or ``bash``) blocks run with ``bash -euo pipefail`` in a scratch
  directory, with ``STEPUP`` (the server's address, also its ``STEPUP_PUBLIC_URL``) and
  the server's ``STEPUP_DATA_DIR`` in the environment and this interpreter's bin
  directory first on ``PATH`` (so ``stepup`` is the repository's CLI, against the same
  data, and ``python3`` has pyotp). Blocks share state as one shell session would: the
  variables and functions a block defines are carried to the next one.
- ```` ```python ```` blocks run in this process, in one namespace shared by all of them
  (as one interpreter session would), with the variables the shell blocks *exported* in
  ``os.environ`` (``STEPUP``, ``KEY``, ``APP_ID``). Tracebacks name lines of the guide.
- Any other block, and a block that must not run (``pip install``), is an illustration:
  the line right before its fence is ``<!-- illustration -->``. Every block is either run
  or marked, and at most ``MAX_ILLUSTRATIONS`` are marked.

Each block is one test item, named by its line in the guide; after a failure the rest
are skipped (they build on each other).
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from unittest import mock

import pytest

from tests.support.server import STEPUP, clean_env, free_port, wait_until_up

GUIDE = Path(__file__).resolve().parents[2] / "docs" / "integration.md"
MARK = "<!-- illustration -->"
MAX_ILLUSTRATIONS = 5
RUNNERS = {"sh": "sh", "bash": "sh", "python": "python"}
BLOCK_TIMEOUT = 120  # seconds; a block that waits for a TOTP step waits at most 30 s
FENCE = re.compile(r"^```\s*([A-Za-z0-9_+-]*)\s*$")


@dataclass(frozen=True)
class Block:
    line: int  # 1-based line of the opening fence
    lang: str
    code: str
    illustration: bool

    @property
    def runner(self) -> str | None:
        return None if self.illustration else RUNNERS.get(self.lang)

    @property
    def name(self) -> str:
        return f"line{self.line}-{self.lang or 'plain'}"


def parse(text: str) -> list[Block]:
    """The fenced blocks of a Markdown text (top-level ``` fences only)."""
    lines = text.splitlines()
    blocks: list[Block] = []
    i = 0
    while i < len(lines):
        opening = FENCE.match(lines[i])
        if opening is None:
            i += 1
            continue
        start, lang = i, opening.group(1).lower()
        i += 1
        while i < len(lines) and lines[i].rstrip() != "```":
            i += 1
        if i == len(lines):
            raise AssertionError(f"{GUIDE.name}:{start + 1}: the fence is never closed")
        marked = start > 0 and lines[start - 1].strip() == MARK
        blocks.append(Block(line=start + 1, lang=lang,
                            code="\n".join(lines[start + 1:i]) + "\n", illustration=marked))
        i += 1
    return blocks


BLOCKS = parse(GUIDE.read_text(encoding="utf-8"))
RUNNABLE = [b for b in BLOCKS if b.runner]


# --- the guide's shape -------------------------------------------------------------------


def test_every_block_runs_or_is_marked_as_an_illustration() -> None:
    unmarked = [f"line {b.line}: ```{b.lang}" for b in BLOCKS
                if not b.illustration and b.runner is None]
    assert not unmarked, (f"blocks that neither run (sh, python) nor are marked with "
                          f"{MARK!r} on the line before the fence: {unmarked}")
    marks = [n + 1 for n, line in enumerate(GUIDE.read_text(encoding="utf-8").splitlines())
             if line.strip() == MARK]
    assert len(marks) == sum(b.illustration for b in BLOCKS), \
        f"an illustration mark not right before a fence (lines {marks})"
    illustrations = [b.line for b in BLOCKS if b.illustration]
    assert len(illustrations) <= MAX_ILLUSTRATIONS, \
        f"{len(illustrations)} illustrations (lines {illustrations}): make them run"
    assert {b.runner for b in RUNNABLE} == {"sh", "python"}, "both forms of the flow"
    assert len(RUNNABLE) >= 20


def test_the_parser_sees_marks_and_languages() -> None:
    text = f"a\n```sh\necho 1\n```\n{MARK}\n```json\n{{}}\n```\n```\nplain\n```\n"
    got = [(b.line, b.lang, b.illustration, b.runner) for b in parse(text)]
    assert got == [(2, "sh", False, "sh"), (6, "json", True, None), (9, "", False, None)]


# --- running it ----------------------------------------------------------------------


@dataclass
class Session:
    """The server and what the blocks share, as one reader's shell and interpreter."""

    base: str
    work: Path
    env: dict[str, str]
    state: Path  # the shell variables and functions so far (declare -p / declare -f)
    exported: Path  # `env -0` after the last shell block
    namespace: dict[str, Any] = field(
        default_factory=lambda: {"__name__": "integration_doc"})
    failed: str | None = None
    started: float = field(default_factory=time.monotonic)


def _stop(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=10)


@pytest.fixture(scope="module")
def session(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Session]:
    missing = [p for p in ("bash", "curl", "jq", "openssl") if shutil.which(p) is None]
    if missing:
        pytest.fail(f"the guide's shell blocks need {', '.join(missing)}: run "
                    "scripts/install-test-deps.sh")
    home = tmp_path_factory.mktemp("integration-doc")
    data, work = home / "data", home / "work"
    work.mkdir()
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    server_env = clean_env(STEPUP_DATA_DIR=str(data), STEPUP_ENV="development",
                           STEPUP_PUBLIC_URL=base)
    log_path = home / "serve.log"
    with log_path.open("wb") as log:
        proc = subprocess.Popen([*STEPUP, "serve", "--host", "127.0.0.1", "--port", str(port)],
                                cwd=home, env=server_env, stdout=log,
                                stderr=subprocess.STDOUT)
    try:
        if not wait_until_up(base, "/readyz", seconds=60):
            pytest.fail("stepup serve did not start:\n"
                        + log_path.read_text(errors="replace")[-3000:])
        bin_dir = Path(sys.executable).parent
        assert (bin_dir / "stepup").exists(), f"no stepup script in {bin_dir}"
        block_env = dict(server_env, STEPUP=base,
                         PATH=f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}")
        block_env.pop("STEPUP_PUBLIC_URL")  # the reader's shell does not have it
        s = Session(base=base, work=work, env=block_env, state=home / "shell-state.sh",
                    exported=home / "shell-env")
        # Python blocks read what the shell exported; the base for them is STEPUP.
        with mock.patch.dict(os.environ, {"STEPUP": base}):
            yield s
        sys.stderr.write(f"\n{GUIDE.name}: {len(RUNNABLE)} blocks in "
                         f"{time.monotonic() - s.started:.1f} s\n")
    finally:
        _stop(proc)


_SKIP_VARS = re.compile(r"^(BASH.*|_.*|PIPESTATUS|FUNCNAME|LINENO|OLDPWD|PWD|SHLVL|"
                        r"COLUMNS|LINES|RANDOM|SECONDS|EPOCH.*|SRANDOM|HISTCMD|OPT.*|"
                        r"GROUPS|DIRSTACK|COMP_.*|MAPFILE|REPLY)$")


# Before the block: restore what the blocks so far defined. After it: save every variable
# that is not the shell's own (declare -p) and every function (declare -f), and the
# exported environment for the Python blocks.
_PROLOGUE = """__doc_before=$(compgen -v)
if [[ -f {state} ]]; then source {state}; fi
# --- {where} ---
"""
_EPILOGUE = """# --- end of the block ---
{{
  for __doc_v in $(compgen -v); do
    if [[ $__doc_v == __doc_* || $__doc_v =~ {skip} ]]; then continue; fi
    if ! grep -qxF -- "$__doc_v" <<<"$__doc_before"; then declare -p "$__doc_v"; fi
  done
  declare -f
}} > {state}.new
mv {state}.new {state}
env -0 > {exported}
"""


def _shell_script(block: Block, s: Session) -> str:
    """The block between a prologue that restores the session and an epilogue that
    saves it: what one shell session would keep from block to block."""
    names = {"state": shlex.quote(str(s.state)), "exported": shlex.quote(str(s.exported)),
             "skip": shlex.quote(_SKIP_VARS.pattern), "where": f"{GUIDE.name}:{block.line}"}
    return _PROLOGUE.format(**names) + block.code + _EPILOGUE.format(**names)


def _run_sh(block: Block, s: Session) -> None:
    script = s.work.parent / "block.sh"
    script.write_text(_shell_script(block, s), encoding="utf-8")
    try:
        done = subprocess.run(["bash", "-euo", "pipefail", str(script)], cwd=s.work,
                              env=s.env, capture_output=True, text=True,
                              timeout=BLOCK_TIMEOUT, check=False)
    except subprocess.TimeoutExpired as exc:
        raise AssertionError(f"{GUIDE.name}:{block.line}: the block ran over "
                             f"{BLOCK_TIMEOUT} s\n{exc.stdout}\n{exc.stderr}") from None
    if done.returncode != 0:
        raise AssertionError(
            f"{GUIDE.name}:{block.line}: the sh block exited with {done.returncode}\n"
            f"--- block ---\n{block.code}--- stdout ---\n{done.stdout}"
            f"--- stderr ---\n{done.stderr}")
    sys.stdout.write(done.stdout)
    # What the shell exported is what a Python started from it would see.
    for entry in s.exported.read_bytes().split(b"\0"):
        name, sep, value = entry.decode("utf-8", "replace").partition("=")
        if sep and not _SKIP_VARS.match(name) and s.env.get(name) != value:
            os.environ[name] = value


def _run_python(block: Block, s: Session) -> None:
    # Padded so that line numbers in a traceback are the guide's, and named by the
    # guide's path so the traceback shows the guide's lines.
    source = "\n" * block.line + block.code
    exec(compile(source, str(GUIDE), "exec"), s.namespace)  # the guide's own code


@pytest.mark.parametrize("block", RUNNABLE, ids=[b.name for b in RUNNABLE])
def test_block(block: Block, session: Session) -> None:
    if session.failed:
        pytest.skip(f"an earlier block failed ({session.failed})")
    session.failed = f"line {block.line}"
    if block.runner == "sh":
        _run_sh(block, session)
    else:
        _run_python(block, session)
    session.failed = None
