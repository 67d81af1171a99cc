"""What of a file a process has mapped, read from ``/proc/PID/smaps``."""

from __future__ import annotations

from pathlib import Path


def mapped_kb(path: Path, pid: int | str = "self") -> int:
    """How much of ``path`` the process has in its page table (smaps' Rss), in kB."""
    total, ours = 0, False
    for line in Path(f"/proc/{pid}/smaps").read_text().splitlines():
        fields = line.split()
        if "-" in fields[0] and len(fields) >= 5:  # a mapping's header line
            ours = " ".join(fields[5:]) == str(path)
        elif ours and fields[0] == "Rss:":
            total += int(fields[1])
    return total


def kb(size: int) -> int:
    """The kB of the whole pages that ``size`` bytes of a file take."""
    return -(-size // 4096) * 4
