"""What a non-editable install gets: the wheel carries the translations, and StepUp finds
them where the wheel puts them."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from stepup.i18n import locales_dir

ROOT = Path(__file__).resolve().parents[2]


def test_the_wheel_carries_the_catalogues_and_templates(tmp_path: Path) -> None:
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
                    "-q", "-w", str(tmp_path), str(ROOT)], check=True, capture_output=True,
                   timeout=300)
    wheel = next(tmp_path.glob("stepup-*.whl"))
    names = zipfile.ZipFile(wheel).namelist()
    for lang in ("en", "ru"):
        assert any(n.endswith(f"data/share/stepup/locales/{lang}/LC_MESSAGES/messages.po")
                   for n in names), names
    assert any(n.startswith("stepup/web/templates/") for n in names)
    assert any(n.startswith("stepup/methods/backup_codes/templates/") for n in names)
    assert any(n.startswith("stepup/store/migrations/versions/") for n in names)


def test_an_installed_copy_is_found_and_a_missing_one_is_refused(tmp_path: Path) -> None:
    checkout = tmp_path / "checkout" / "locales"  # no catalogues: not a source checkout
    installed = tmp_path / "prefix" / "share" / "stepup" / "locales"
    (installed / "ru" / "LC_MESSAGES").mkdir(parents=True)
    (installed / "ru" / "LC_MESSAGES" / "messages.po").write_text("")
    assert locales_dir((checkout, installed)) == installed
    with pytest.raises(RuntimeError, match="translations"):
        locales_dir((checkout,))
