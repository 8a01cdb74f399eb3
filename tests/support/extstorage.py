"""Fixtures for the ExtStorage provider tests: an installed provider in a temp dir.

`provider` installs the `loopfile` provider with its own data dir and, at the
end, detaches every loop device still backed by a file in that dir (also
when a test failed).  `run_script` runs an installed script the way Ganeti's
noded does: cwd = the provider dir, the environment captured on a real
Ganeti 3.0.2 cluster (tests/fixtures/ganeti-env) with our volume name.
"""

from __future__ import annotations

import contextlib
import subprocess
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest

from osdef.disk import loop
from osdef.extstorage import install as installer
from tests.ganeti_env import FIXTURES, parse_log


def captured_es_env(action: str) -> dict[str, str]:
    """The environment a real Ganeti passed to the reference provider's `action` script."""
    for path in sorted(FIXTURES.glob(f"*/*-es-loopfile-{action}.log")):
        return parse_log(path)[2]
    raise LookupError(f"no captured {action} call in {FIXTURES}")


def ganeti_env(action: str, **overrides: str) -> dict[str, str]:
    """A captured env for `action` (or the attach one when none was captured) with overrides."""
    try:
        env = captured_es_env(action)
    except LookupError:
        env = captured_es_env("attach")
    env = {k: v for k, v in env.items() if not k.startswith("VOL_") and k != "EXTP_TIER"}
    env.update(overrides)
    return env


def ok(proc: subprocess.CompletedProcess) -> str:
    """A script's stdout, after checking it succeeded."""
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def one_error_line(proc: subprocess.CompletedProcess) -> str:
    """The single stderr line of a failed script (no traceback)."""
    assert proc.returncode != 0
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert "Traceback" not in proc.stderr
    return lines[0]


@dataclass
class Provider:
    dir: Path
    data_dir: Path

    def run(self, action: str, **variables: str) -> subprocess.CompletedProcess:
        return subprocess.run([str(self.dir / action)], cwd=self.dir, env=ganeti_env(action, **variables),
                              capture_output=True, text=True, timeout=60)

    def image(self, name: str) -> Path:
        return self.data_dir / f"{name}.img"


def detach_all(data_dir: Path) -> None:
    for f in data_dir.glob("*.img"):
        with contextlib.suppress(loop.LoopError):
            for dev in loop.devices_of(f):
                with contextlib.suppress(loop.LoopError):
                    loop.detach(dev)


@pytest.fixture
def provider(tmp_path) -> Provider:
    report = installer.install(tmp_path / "extstorage" / "loopfile", data_dir=tmp_path / "data")
    p = Provider(report.provider_dir, report.data_dir)
    yield p
    detach_all(p.data_dir)


@pytest.fixture
def vol_name() -> str:
    return f"{uuid.uuid4()}.ext.disk0"
