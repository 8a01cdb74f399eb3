"""osdef.disk.loop's losetup helper without root: a stand-in losetup records its arguments and answers as
told; the real one is driven in tests/scripts/disk/test_loop.py."""

from __future__ import annotations

import shlex
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from osdef.disk import loop
from osdef.errors import OsdefError


@pytest.fixture
def fake(tmp_path, monkeypatch):
    """fake(body) installs a stand-in losetup running ``body`` (sh); its arguments land in ``args``, one a line."""
    args = tmp_path / "args"

    def install(body: str) -> Path:
        script = tmp_path / "losetup"
        script.write_text(f'#!/bin/sh\nprintf "%s\\n" "$@" > {shlex.quote(str(args))}\n{body}\n')
        script.chmod(0o755)
        monkeypatch.setattr(loop, "LOSETUP", str(script))
        return args
    return install


def _args(path: Path) -> list[str]:
    return path.read_text().splitlines() if path.exists() else []


@settings(max_examples=40, deadline=None, database=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.booleans(), st.integers(0, 1 << 44), st.integers(0, 1 << 44), st.sampled_from((0, *loop.SECTOR_SIZES)))
def test_attach_passes_each_option_once_and_returns_the_device(fake, read_only, offset, sizelimit, sector_size):
    args = fake("echo /dev/loop7")
    device = loop.attach("/srv/a volume.img", read_only=read_only, offset=offset, sizelimit=sizelimit,
                         sector_size=sector_size)
    assert device == "/dev/loop7"
    expected = ["-f", "--show", *(["-r"] if read_only else []), *(["-o", str(offset)] if offset else []),
                *(["--sizelimit", str(sizelimit)] if sizelimit else []),
                *(["-b", str(sector_size)] if sector_size else []), "/srv/a volume.img"]
    assert _args(args) == expected


@pytest.mark.parametrize("options, word", [({"offset": -512}, "offset"), ({"sizelimit": -1}, "size limit"),
                                           ({"offset": 1.5}, "offset"), ({"offset": True}, "offset"),
                                           ({"sector_size": 3000}, "sector size"),
                                           ({"sector_size": 256}, "sector size")])
def test_bad_options_are_refused_before_losetup_runs(fake, options, word):
    args = fake("echo /dev/loop7")
    with pytest.raises(loop.LoopError, match=f"^loop device {word} .*: use "):
        loop.attach("/srv/v.img", **options)
    assert _args(args) == []


@pytest.mark.parametrize("body, line", [
    ('echo "losetup: /srv/v.img: failed to set up loop device" >&2\necho "losetup: no free device" >&2\nexit 1',
     "cannot attach /srv/v.img to a loop device: losetup: no free device"),
    ("exit 3", "cannot attach /srv/v.img to a loop device: exit code 3, no message"),
    ("echo nonsense", "losetup attached /srv/v.img but printed no device ('nonsense\\n')"),
    ("printf '/dev/loop1\\n/dev/loop2\\n'", "losetup attached /srv/v.img but printed no device "
                                             "('/dev/loop1\\n/dev/loop2\\n')"),
])
def test_a_failed_attach_is_one_line(fake, body, line):
    fake(body)
    with pytest.raises(loop.LoopError) as info:
        loop.attach("/srv/v.img")
    assert str(info.value) == line
    assert isinstance(info.value, OsdefError)  # the scripts' edges print it as their one line


def test_a_missing_or_hanging_losetup_is_one_line(fake, monkeypatch, tmp_path):
    monkeypatch.setattr(loop, "LOSETUP", str(tmp_path / "no-such-losetup"))
    with pytest.raises(loop.LoopError, match="^cannot detach /dev/loop9: losetup not found: install util-linux$"):
        loop.detach("/dev/loop9")
    fake("sleep 5")
    monkeypatch.setattr(loop, "LOSETUP_TIMEOUT", 0.3)
    with pytest.raises(loop.LoopError, match=r"^cannot update the size of /dev/loop9: losetup did not answer "
                                             r"within 0.3 s$"):
        loop.refresh_capacity("/dev/loop9")


def test_devices_of_detach_and_refresh_ask_losetup_as_documented(fake):
    args = fake("printf '/dev/loop3\\n\\n  /dev/loop11 \\n'")
    assert loop.devices_of(Path("/srv/v.img")) == ["/dev/loop3", "/dev/loop11"]
    assert _args(args) == ["-j", "/srv/v.img", "-n", "-O", "NAME"]
    fake("true")
    assert loop.devices_of("/srv/v.img") == []
    loop.detach("/dev/loop3")
    assert _args(args) == ["-d", "/dev/loop3"]
    loop.refresh_capacity("/dev/loop3")
    assert _args(args) == ["-c", "/dev/loop3"]


def test_attached_detaches_after_the_block_and_after_its_failure(fake, tmp_path):
    calls = tmp_path / "calls"
    fake(f'echo "$1" >> {shlex.quote(str(calls))}\n[ "$1" = -d ] || echo /dev/loop4')
    with loop.attached("/srv/v.img", read_only=True) as dev:
        assert dev == "/dev/loop4"
    with pytest.raises(KeyError), loop.attached("/srv/v.img"):
        raise KeyError("the block's own failure")
    assert calls.read_text().split() == ["-f", "-d", "-f", "-d"]


def test_attached_reports_a_failed_detach_unless_the_block_failed(fake):
    fake('[ "$1" = -d ] && { echo "losetup: /dev/loop4: detach failed: busy" >&2; exit 1; }\necho /dev/loop4')
    with pytest.raises(loop.LoopError, match="^cannot detach /dev/loop4: losetup: /dev/loop4: detach failed"):
        with loop.attached("/srv/v.img"):
            pass
    with pytest.raises(KeyError):  # the block's error is the one that matters
        with loop.attached("/srv/v.img"):
            raise KeyError("the block's own failure")
