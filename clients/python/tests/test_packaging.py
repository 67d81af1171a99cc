"""``python -m build`` makes a wheel and an sdist of the client, and the version they
carry is the one the package reports (written once, in ``stepup_client/_version.py``)."""

from __future__ import annotations

import subprocess
import sys
import tarfile
import zipfile
from email.parser import Parser
from pathlib import Path

import stepup_client

CLIENT = Path(__file__).resolve().parents[1]


def test_build_makes_a_wheel_and_an_sdist_of_one_version(tmp_path: Path) -> None:
    # The sdist, then the wheel from the sdist (so the sdist is complete, and nothing is
    # written into the checkout); no isolation: the venv's setuptools, no download.
    out = subprocess.run([sys.executable, "-m", "build", "--no-isolation",
                          "--outdir", str(tmp_path), str(CLIENT)],
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-2000:]
    version = stepup_client.__version__
    wheel = tmp_path / f"stepup_client-{version}-py3-none-any.whl"
    sdist = tmp_path / f"stepup_client-{version}.tar.gz"
    assert wheel.is_file() and sdist.is_file(), sorted(p.name for p in tmp_path.iterdir())

    with zipfile.ZipFile(wheel) as whl:
        names = whl.namelist()
        meta = Parser().parsestr(
            whl.read(f"stepup_client-{version}.dist-info/METADATA").decode())
    assert meta["Name"] == "stepup-client" and meta["Version"] == version
    assert any(r.startswith("httpx") for r in meta.get_all("Requires-Dist") or [])
    modules = {p.name for p in (CLIENT / "src" / "stepup_client").glob("*.py")}
    assert {f"stepup_client/{m}" for m in modules} | {"stepup_client/py.typed"} <= set(names)

    with tarfile.open(sdist) as tar:
        root = f"stepup_client-{version}"
        members = set(tar.getnames())
        pkg_info = tar.extractfile(f"{root}/PKG-INFO")
        assert pkg_info is not None
        assert Parser().parsestr(pkg_info.read().decode())["Version"] == version
    assert {f"{root}/pyproject.toml", f"{root}/README.md",
            f"{root}/src/stepup_client/_version.py"} <= members
