"""The SQLite database file held in memory by the serving process (store/sqlite_resident.py):
every byte of it mapped in this process's page table, as it grows, within its limit."""

from __future__ import annotations

import os
import sqlite3
import time
from pathlib import Path

import pytest

from stepup.store import sqlite_resident
from stepup.store.sqlite_resident import Resident
from tests.support.smaps import kb, mapped_kb

BLOCK = 64 * 1024


def test_the_whole_file_is_mapped_and_let_go_on_close(tmp_path: Path) -> None:
    db = tmp_path / "stepup.db"
    db.write_bytes(os.urandom(3 * BLOCK + 5000))
    resident = Resident(db, 2**30)
    assert resident.refresh() == db.stat().st_size
    assert mapped_kb(db) == kb(db.stat().st_size)
    resident.close()
    assert mapped_kb(db) == 0


def test_growth_is_mapped_at_the_next_refresh(tmp_path: Path) -> None:
    # SQLite's files are whole pages: a growth mapping begins where the last one ended
    db = tmp_path / "stepup.db"
    db.write_bytes(os.urandom(BLOCK + 4096))
    resident = Resident(db, 2**30)
    try:
        resident.refresh()
        with db.open("ab") as f:
            f.write(os.urandom(2 * BLOCK))
        assert mapped_kb(db) == kb(BLOCK + 4096)
        assert resident.refresh() == 3 * BLOCK + 4096
        assert mapped_kb(db) == kb(3 * BLOCK + 4096)
    finally:
        resident.close()


def test_a_replaced_or_shrunk_file_is_mapped_afresh(tmp_path: Path) -> None:
    db = tmp_path / "stepup.db"
    db.write_bytes(os.urandom(2 * BLOCK))
    resident = Resident(db, 2**30)
    try:
        resident.refresh()
        # a restore puts another file under the name: the old one is let go
        fresh = tmp_path / "restored.db"
        fresh.write_bytes(os.urandom(2 * BLOCK + 10))
        os.replace(fresh, db)
        assert resident.refresh() == 2 * BLOCK + 10
        assert mapped_kb(db) == kb(2 * BLOCK + 10)
        assert mapped_kb(Path(f"{db} (deleted)")) == 0
        os.truncate(db, BLOCK // 2)  # a VACUUM: nothing past the end stays held
        assert resident.refresh() == BLOCK // 2
        assert mapped_kb(db) == kb(BLOCK // 2)
        os.unlink(db)
        assert resident.refresh() == 0
        assert mapped_kb(Path(f"{db} (deleted)")) == 0
    finally:
        resident.close()


def test_no_more_than_the_limit_is_held(tmp_path: Path) -> None:
    db = tmp_path / "stepup.db"
    db.write_bytes(os.urandom(4 * BLOCK))
    resident = Resident(db, BLOCK + 4096)
    try:
        assert resident.refresh() == BLOCK + 4096
        assert mapped_kb(db) == kb(BLOCK + 4096)
    finally:
        resident.close()
    assert Resident(db, 2**50).limit <= os.sysconf("SC_PAGE_SIZE") * os.sysconf(
        "SC_PHYS_PAGES") // 2  # never more than half the machine's memory


def test_many_growths_end_in_one_mapping(tmp_path: Path,
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """Each mapping keeps a descriptor open: past MAX_MAPS they become one."""
    monkeypatch.setattr(sqlite_resident, "MAX_MAPS", 3)
    db = tmp_path / "stepup.db"
    db.write_bytes(os.urandom(BLOCK))
    resident = Resident(db, 2**30)
    try:
        counts = []
        for _ in range(6):
            resident.refresh()
            maps = Path("/proc/self/maps").read_text().splitlines()
            counts.append(sum(line.endswith(f" {db}") for line in maps))
            assert mapped_kb(db) == kb(db.stat().st_size)
            with db.open("ab") as f:
                f.write(os.urandom(BLOCK // 2 + 4096))
        assert counts == [1, 2, 3, 1, 2, 3]
    finally:
        resident.close()


def test_the_thread_keeps_up_with_the_file(tmp_path: Path) -> None:
    db = tmp_path / "stepup.db"
    db.write_bytes(os.urandom(BLOCK))
    resident = Resident(db, 2**30)
    resident.start(interval=0.05)
    try:
        assert mapped_kb(db) == kb(BLOCK)
        with db.open("ab") as f:
            f.write(os.urandom(BLOCK))
        deadline = time.monotonic() + 10
        while mapped_kb(db) < kb(2 * BLOCK) and time.monotonic() < deadline:
            time.sleep(0.02)
        assert mapped_kb(db) == kb(2 * BLOCK)
    finally:
        resident.close()
    assert mapped_kb(db) == 0


def test_a_zero_limit_holds_nothing(tmp_path: Path) -> None:
    db = tmp_path / "stepup.db"
    db.write_bytes(os.urandom(BLOCK))
    resident = Resident(db, 0)
    resident.start(interval=0.05)
    assert mapped_kb(db) == 0
    resident.close()


def test_a_process_with_the_database_open_holds_nothing(tmp_path: Path) -> None:
    """A close of the file here would drop the connection's locks: nothing is held."""
    db = tmp_path / "stepup.db"
    conn = sqlite3.connect(db)
    conn.execute("CREATE TABLE t (x)")
    conn.execute("INSERT INTO t VALUES (1)")
    conn.commit()
    try:
        resident = Resident(db, 2**30)
        assert resident.start(interval=0.05) == 0
        assert mapped_kb(db) == 0
        resident.close()
    finally:
        conn.close()
    resident = Resident(db, 2**30)  # once it is closed, the file may be held
    assert resident.start(interval=0.05) == db.stat().st_size
    resident.close()


def test_where_open_descriptors_cannot_be_listed_nothing_is_held(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    db = tmp_path / "stepup.db"
    db.write_bytes(os.urandom(BLOCK))

    def no_proc(path: str) -> list[str]:
        raise FileNotFoundError(2, "No such file or directory", path)

    monkeypatch.setattr(sqlite_resident.os, "listdir", no_proc)
    resident = Resident(db, 2**30)
    assert resident.start(interval=0.05) == 0
    resident.close()
    assert mapped_kb(db) == 0
