"""debroot.sh's cache key: a cached root goes stale when what builds it changes, not when the
rest of the script (entering, running, leaving a root; comments) does."""

from __future__ import annotations

import subprocess
from pathlib import Path

from tests.trixie.debian.conftest import DEBROOT


def key(script: Path, *args: str) -> str:
    out = subprocess.run(["bash", str(script), "key", *args], capture_output=True, text=True,
                         check=True, env={"PATH": "/usr/bin:/bin"}).stdout
    assert len(out.strip()) == 16, out
    return out.strip()


def edited(tmp_path: Path, old: str, new: str) -> Path:
    text = DEBROOT.read_text()
    assert text.count(old) == 1, old
    copy = tmp_path / "debroot.sh"
    copy.write_text(text.replace(old, new))
    return copy


def test_the_key_follows_release_and_packages():
    assert key(DEBROOT, "trixie", "ganeti") == key(DEBROOT, "trixie", "ganeti")
    assert key(DEBROOT, "trixie", "ganeti") != key(DEBROOT, "bookworm", "ganeti")
    assert key(DEBROOT, "trixie", "ganeti") != key(DEBROOT, "trixie", "ganeti", "patch")


def test_changing_how_a_root_is_entered_keeps_the_cached_root(tmp_path):
    script = edited(tmp_path, "    mkdir -m 1777 \"$m/run/lock\"\n",
                    "    mkdir -m 1777 \"$m/run/lock\"  # a comment\n    true\n")
    assert key(script, "trixie", "ganeti") == key(DEBROOT, "trixie", "ganeti")
    script = edited(tmp_path, "# debroot.sh - Debian roots", "# debroot.sh - the Debian roots")
    assert key(script, "trixie", "ganeti") == key(DEBROOT, "trixie", "ganeti")


def test_changing_how_a_root_is_built_makes_it_stale(tmp_path):
    script = edited(tmp_path, "debootstrap --variant=minbase \"$release\"",
                    "debootstrap --variant=minbase --include=less \"$release\"")
    assert key(script, "trixie", "ganeti") != key(DEBROOT, "trixie", "ganeti")
    script = edited(tmp_path, "RECIPE_VERSION=1 ", "RECIPE_VERSION=2 ")
    assert key(script, "trixie", "ganeti") != key(DEBROOT, "trixie", "ganeti")
