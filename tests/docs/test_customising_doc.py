"""docs/customising.md runs: its adapter module is written to a scratch directory, StepUp
is started the way the guide's ``stepup serve`` block says (its ``export`` lines), and
every later shell block runs against it with ``bash -euo pipefail``, in order, sharing
one shell's variables and functions. So the example cannot drift from the product.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.docs.test_integration_doc import Block, parse
from tests.support.server import STEPUP, clean_env, free_port, wait_until_up

GUIDE = Path(__file__).resolve().parents[2] / "docs" / "customising.md"
BLOCKS = parse(GUIDE.read_text(encoding="utf-8"))
EXPORT = re.compile(r'^export (\w+)=(.*?)\s*(?:#.*)?$')


def _module(block: Block) -> str:
    name = re.match(r"# (\w+)\.py\b", block.code)
    assert name, f"{GUIDE.name}:{block.line}: the module block names its file first"
    return name.group(1)


def test_the_guide_has_a_module_a_start_and_checks() -> None:
    langs = [b.lang for b in BLOCKS]
    assert langs[0] == "python" and langs[1:] == ["sh"] * (len(BLOCKS) - 1), langs
    assert "stepup serve" in BLOCKS[1].code and len(BLOCKS) >= 4
    assert not any(b.illustration for b in BLOCKS)


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path, dict[str, str]]]:
    if shutil.which("jq") is None or shutil.which("curl") is None:
        pytest.fail("the guide's shell blocks need curl and jq: run "
                    "scripts/install-test-deps.sh")
    home = tmp_path_factory.mktemp("customising-doc")
    work = home / "work"
    work.mkdir()
    module, start = BLOCKS[0], BLOCKS[1]
    (work / f"{_module(module)}.py").write_text(module.code, encoding="utf-8")
    # The guide's exports, as its reader's shell would expand them in ``work``.
    exports = {m.group(1): m.group(2).strip('"').replace("$PWD", str(work))
               for line in start.code.splitlines() if (m := EXPORT.match(line))}
    assert "STEPUP_ADAPTER" in exports and exports.get("PYTHONPATH") == str(work)
    pythonpath = os.pathsep.join(p for p in (str(work), os.environ.get("PYTHONPATH")) if p)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = clean_env(**{**exports, "PYTHONPATH": pythonpath,
                       "STEPUP_DATA_DIR": str(home / "data"), "STEPUP_PUBLIC_URL": base})
    log_path = home / "serve.log"
    with log_path.open("wb") as log:
        proc = subprocess.Popen([*STEPUP, "serve", "--host", "127.0.0.1", "--port", str(port)],
                                cwd=work, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        if not wait_until_up(base, "/readyz", seconds=60):
            pytest.fail("stepup serve did not start:\n"
                        + log_path.read_text(errors="replace")[-3000:])
        bin_dir = Path(sys.executable).parent
        shell_env = clean_env(STEPUP=base,
                              PATH=f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}")
        yield base, work, shell_env
    finally:
        proc.terminate()
        proc.wait(timeout=20)


def test_the_example_runs(served: tuple[str, Path, dict[str, str]]) -> None:
    _, work, env = served
    # One shell session, as the reader's: the blocks after the start, in order.
    script = "\n".join(f"# --- {GUIDE.name}:{b.line} ---\n{b.code}" for b in BLOCKS[2:])
    done = subprocess.run(["bash", "-euo", "pipefail", "-c", script], cwd=work, env=env,
                          capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, f"{done.stdout}\n--- stderr ---\n{done.stderr}"
    assert "That is not your Acme PIN." in done.stdout
    assert "Acme требует приложение-аутентификатор." in done.stderr
