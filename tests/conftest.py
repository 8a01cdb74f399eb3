"""Fixtures shared by every test tier.

`site_config_file` is the site config tests run with: libguestfs under TCG
(this machine cannot run nested KVM) and a test image cache.  Production
nodes get neither by default; see osdef/config.py.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests import parallel, tiers

# the fixtures of each domain (tests/support/), for every tier
pytest_plugins = [
    "tests.support.stream",
    "tests.support.guest",
    "tests.support.network",
    "tests.support.images",
    "tests.support.extstorage",
    "tests.support.differential",
]

REPO = Path(__file__).resolve().parents[1]
TEST_IMAGE_CACHE = Path(os.environ.get("OSDEF_TEST_IMAGE_CACHE", "/var/tmp/osdef-test-images"))


def write_site_config(path: Path, *, cache_dir: Path = TEST_IMAGE_CACHE, extra: str = "") -> Path:
    path.write_text(
        "# site config used by the test suite\n"
        "libguestfs:\n"
        "  backend_settings: [force_tcg]\n"
        "images:\n"
        f"  cache_dir: {cache_dir}\n"
        + extra
    )
    return path


@pytest.fixture(scope="session")
def site_config_file(tmp_path_factory) -> Path:
    return write_site_config(tmp_path_factory.mktemp("siteconfig") / "osdef.yaml")


@pytest.fixture(scope="session")
def installed_os_dir(tmp_path_factory, site_config_file) -> Path:
    """`osdef install` into a temp OS dir, with the test site config installed next to it."""
    os_dir = tmp_path_factory.mktemp("os") / "image"
    subprocess.run([sys.executable, "-m", "osdef.cli", "install", "--os-dir", str(os_dir),
                    "--config", str(site_config_file)], check=True, capture_output=True)
    return os_dir


def clean_env(**extra: str) -> dict[str, str]:
    """Ganeti's clean environment for create/rename/verify."""
    env = {"PATH": "/sbin:/bin:/usr/sbin:/usr/bin"}
    env.update(extra)
    return env


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    misplaced = tiers.apply_markers(items)  # each tier directory's marker (tests/tiers.py)
    if misplaced:
        raise pytest.UsageError("tests in the wrong tier:\n" + "\n".join(misplaced))
    parallel.order_by_tier(items)  # the most expensive tier first (tests/parallel.py)


@pytest.fixture(autouse=True)
def _tier_guard(request, monkeypatch):
    """tests/pure and tests/scripts launch no appliance (tests/tiers.py)."""
    tiers.guard_launch(request.node, monkeypatch)


@pytest.hookimpl(optionalhook=True)  # a hook of pytest-xdist, absent without it
def pytest_xdist_make_scheduler(config, log):
    if config.getvalue("dist") == "loadgroup":
        return parallel.make_scheduler(config, log)
    return None
