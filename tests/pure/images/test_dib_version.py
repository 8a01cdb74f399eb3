"""The diskimage-builder range check, the forced debootstrap and what the manifest records."""

from __future__ import annotations

from pathlib import Path

import pytest

from osdef.config import ImageSettings
from osdef.errors import ImageError
from osdef.images import dib
from osdef.images.manifest import parse_manifest
from osdef.images.recipe import DibRecipe


@pytest.mark.parametrize("found", ["3.40.0", "3.42.0", "3.43.0", "3.43.1.dev4"])
def test_supported_versions_pass(found, tmp_path):
    exe = tmp_path / "disk-image-create"
    exe.write_text("")
    dib.check_dib_version(found, exe)


@pytest.mark.parametrize("found", ["3.13.0", "3.37.0", "3.39.0", "3.44.0", "4.0.0"])
def test_packaged_and_untested_versions_get_one_clear_line(found, tmp_path):
    exe = tmp_path / "disk-image-create"
    exe.write_text("")
    with pytest.raises(ImageError) as exc:
        dib.check_dib_version(found, exe)
    text = str(exc.value)
    assert "\n" not in text
    assert text.startswith(f"diskimage-builder {found} found ({exe}), osdef image build needs >=3.40,<3.44: ")
    assert "make venv" in text and "osdef image add NAME FILE" in text and "osdef image sync NAME" in text


def test_missing_dib_names_the_range(tmp_path):
    with pytest.raises(ImageError, match=r"not installed for .* needs diskimage-builder >=3.40,<3.44"):
        dib.check_dib_version(None, tmp_path / "disk-image-create")


def test_the_pinned_venv_version_is_in_the_range():
    pyproject = (Path(dib.__file__).parents[2] / "pyproject.toml").read_text()
    pins = [line for line in pyproject.splitlines() if '"diskimage-builder==' in line]
    assert pins, "pyproject pins diskimage-builder for the venv route"
    for line in pins:
        version = line.split("==", 1)[1].split('"', 1)[0]
        exe = Path(__file__)  # any existing file
        dib.check_dib_version(version, exe)


def test_dib_is_told_to_use_debootstraps_own_script(monkeypatch, tmp_path):
    scripts = tmp_path / "scripts"
    scripts.mkdir()
    (scripts / "bookworm").write_text("")
    monkeypatch.setattr(dib, "DEBOOTSTRAP_SCRIPTS", scripts)
    recipe = DibRecipe(elements=("debian-minimal",), release="bookworm", packages=(),
                       architecture="amd64", output="fs-image", fs_type="ext4")
    env = dib.dib_environment(ImageSettings(), recipe, tmp_path, {"PATH": "/usr/bin"})
    assert env["DIB_DEBIAN_DEBOOTSTRAP_SCRIPT"] == str(scripts / "bookworm")
    other = DibRecipe(elements=("debian-minimal",), release="forky", packages=(),
                      architecture="amd64", output="fs-image", fs_type="ext4")
    assert "DIB_DEBIAN_DEBOOTSTRAP_SCRIPT" not in dib.dib_environment(ImageSettings(), other, tmp_path, {})


def test_bootstrap_tool_from_the_log():
    assert dib.bootstrap_tool(["mmdebstrap is installed; use it", "I: running mmdebstrap"]) == "mmdebstrap"
    assert dib.bootstrap_tool(["Running /tmp/in_target.d/root.d/08-debootstrap"]) == "debootstrap"
    assert dib.bootstrap_tool(["nothing relevant"]) is None


def test_manifest_records_the_bootstrap_tool():
    text = ('{"name": "x", "artifact": "x.zst", "format": "fs-image", "fs_type": "ext4", '
            '"compression": "zstd", "sha256": "a", "stored_size": 1, "size": 1, "used_size": 1, '
            '"source": "dib", "created_at": "t", "dib_version": "3.43.0", "bootstrap": "debootstrap"}')
    m = parse_manifest(text)
    assert (m.dib_version, m.bootstrap) == ("3.43.0", "debootstrap")
    assert '"bootstrap": "debootstrap"' in m.to_json()
