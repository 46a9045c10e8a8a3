"""`make screenshots` keeps working: the command runs the demo on a throwaway database and writes
the five pictures the README shows, at the sizes it claims."""

import struct
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parents[1]


def png_size(path: Path) -> tuple[int, int]:
    header = path.read_bytes()[:24]
    assert header[:8] == b"\x89PNG\r\n\x1a\n"
    return struct.unpack(">II", header[16:24])


def test_the_screenshots_command_writes_what_the_readme_shows(tmp_path):
    done = subprocess.run(
        [sys.executable, "docs/screenshots.py", "--out", str(tmp_path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    sizes = {p.name: png_size(p) for p in tmp_path.glob("*.png")}
    assert set(sizes) == {"lobby.png", "widget.png", "room.png", "phone-lobby.png", "dashboard.png"}
    assert sizes["lobby.png"] == sizes["room.png"] == (1280, 900)
    assert sizes["phone-lobby.png"] == (390, 844)
    assert sizes["dashboard.png"][0] == 1440
    readme = (ROOT / "README.md").read_text()
    for name in sizes:
        assert f"docs/screenshots/{name}" in readme
        assert (ROOT / "docs" / "screenshots" / name).exists()
