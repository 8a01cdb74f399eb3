"""The provider's pure parts: request parsing, parameters, config file, installed files."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from osdef.extstorage import install as installer
from osdef.extstorage import params, settings, volume
from osdef.extstorage.errors import ProviderConfigError, RequestError
from tests.support.extstorage import ganeti_env


def test_parses_ganeti_create_env():
    env = ganeti_env("create", VOL_NAME="abc.ext.disk0", VOL_SIZE="256", VOL_UUID="u-1", EXTP_TIER="fast")
    req = volume.parse(env)
    assert req.name == "abc.ext.disk0" and req.size_mib == 256 and req.uuid == "u-1"
    assert req.params == {"access": "kernelspace", "provider": "loopfile", "tier": "fast"}


def test_parses_snapshot_and_open():
    req = volume.parse({"VOL_NAME": "v.ext.disk0", "VOL_SNAPSHOT_NAME": "v.ext.disk0.snap",
                        "VOL_SNAPSHOT_SIZE": "64", "VOL_OPEN_EXCLUSIVE": "True"})
    assert req.snapshot_name == "v.ext.disk0.snap" and req.snapshot_size_mib == 64
    assert req.open_exclusive is True


@pytest.mark.parametrize("name", ["", "../etc", "a/b", ".hidden", "x y"])
def test_rejects_unsafe_volume_names(name):
    with pytest.raises(RequestError) as exc:
        volume.parse({"VOL_NAME": name})
    assert "\n" not in str(exc.value)


@pytest.mark.parametrize("size", ["0", "-1", "1.5", "1G", "abc"])
def test_rejects_bad_sizes(size):
    with pytest.raises(RequestError, match="VOL_SIZE"):
        volume.parse({"VOL_NAME": "v", "VOL_SIZE": size})


def test_parameters_list_has_only_name_description_lines():
    lines = params.parameters_list().splitlines()
    assert lines and all(ln.split(" ", 1)[0].isidentifier() and " " in ln for ln in lines)


def test_params_check():
    params.check({"access": "kernelspace", "provider": "loopfile", "preallocate": "yes"})
    with pytest.raises(RequestError, match="unknown parameter tier"):
        params.check({"tier": "fast"})
    with pytest.raises(RequestError, match="EXTP_PREALLOCATE"):
        params.check({"preallocate": "maybe"})


def test_settings_default_and_file(tmp_path):
    assert settings.load(tmp_path).data_dir == settings.DEFAULT_DATA_DIR
    (tmp_path / settings.CONFIG_NAME).write_text("data_dir: /x/y\n")
    assert settings.load(tmp_path).data_dir == Path("/x/y")
    (tmp_path / settings.CONFIG_NAME).write_text("data_dir: relative\n")
    with pytest.raises(ProviderConfigError, match="absolute"):
        settings.load(tmp_path)
    (tmp_path / settings.CONFIG_NAME).write_text("datadir: /x\n")
    with pytest.raises(ProviderConfigError, match="unknown key datadir"):
        settings.load(tmp_path)


def test_install_writes_a_healthy_provider_dir(tmp_path):
    report = installer.install(tmp_path / "loopfile", data_dir=tmp_path / "data")
    assert installer.diagnose(report.provider_dir) == []
    for script in ("create", "remove", "grow", "attach", "detach", "setinfo", "verify",
                   "snapshot", "open", "close"):
        assert os.access(report.provider_dir / script, os.X_OK)
    assert settings.load(report.provider_dir).data_dir == tmp_path / "data"
    assert (tmp_path / "data").is_dir()
    os.unlink(report.provider_dir / "grow")
    assert any("grow" in p for p in installer.diagnose(report.provider_dir))


def test_providers_are_listed_and_installed_generically(tmp_path):
    import subprocess
    import sys

    listed = subprocess.run([sys.executable, "-m", "osdef.cli", "install-extstorage", "--list"],
                            capture_output=True, text=True, check=True).stdout.split()
    assert listed == list(installer.PROVIDERS) and "loopfile" in listed
    report = installer.install(tmp_path / "loopfile", data_dir=tmp_path / "data",
                               python="/usr/bin/python3", create_data_dir=False)
    assert not (tmp_path / "data").exists()  # a package build: the first volume makes it
    problems = installer.diagnose(report.provider_dir)
    assert len(problems) == len(report.scripts)
    assert "its interpreter /usr/bin/python3 cannot import osdef.extstorage.entry" in problems[0]
