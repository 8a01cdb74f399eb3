"""Site config: precedence, defaults, schema errors naming file and key."""

from pathlib import Path

import pytest

from osdef import config
from osdef.errors import ConfigError


def test_no_file_means_production_defaults(tmp_path, monkeypatch):
    monkeypatch.setattr(config, "SYSTEM_CONFIG", tmp_path / "absent.yaml")
    cfg = config.load(os_dir=tmp_path, environ={})
    assert cfg.source is None
    assert cfg.libguestfs.backend_settings == ()  # production nodes have KVM: no force_tcg
    assert cfg.libguestfs.environment() == {}
    assert cfg.images.cache_dir == Path("/var/cache/osdef/images")


def test_precedence_env_then_os_dir_then_etc(tmp_path, monkeypatch):
    etc = tmp_path / "etc.yaml"
    etc.write_text("hooks_dir: /etc-hooks\n")
    monkeypatch.setattr(config, "SYSTEM_CONFIG", etc)
    os_dir = tmp_path / "os"
    os_dir.mkdir()
    assert config.load(os_dir, {}).hooks_dir == Path("/etc-hooks")
    (os_dir / "osdef.yaml").write_text("hooks_dir: /osdir-hooks\n")
    assert config.load(os_dir, {}).hooks_dir == Path("/osdir-hooks")
    explicit = tmp_path / "explicit.yaml"
    explicit.write_text("hooks_dir: /explicit-hooks\n")
    assert config.load(os_dir, {"OSDEF_CONFIG": str(explicit)}).hooks_dir == Path("/explicit-hooks")


def test_full_file(tmp_path):
    f = tmp_path / "osdef.yaml"
    f.write_text("""
images:
  cache_dir: /srv/images
  build_on_demand: true
  debian_mirror: http://mirror.example/debian
libguestfs:
  backend_settings: [force_tcg]
  memsize_mib: 1024
os_parameters:
  timezone: Europe/Berlin
  keep_ssh_host_keys: false
""")
    cfg = config.load_file(f)
    assert cfg.images.cache_dir == Path("/srv/images") and cfg.images.build_on_demand
    assert cfg.libguestfs.environment() == {"LIBGUESTFS_BACKEND_SETTINGS": "force_tcg", "LIBGUESTFS_MEMSIZE": "1024"}
    assert cfg.os_param_defaults == {"timezone": "Europe/Berlin", "keep_ssh_host_keys": "no"}


@pytest.mark.parametrize("text, needle", [
    ("imagez: {}\n", "unknown key imagez"),
    ("images:\n  cache: /x\n", "unknown key images.cache"),
    ("images:\n  cache_dir: relative\n", "images.cache_dir must be an absolute path"),
    ("images:\n  build_on_demand: sometimes\n", "images.build_on_demand must be true or false"),
    ("libguestfs:\n  backend_settings: 7\n", "libguestfs.backend_settings must be a list"),
    ("libguestfs:\n  memsize_mib: 12\n", "libguestfs.memsize_mib must be an integer >= 256"),
    ("images: [1, 2]\n", "images must be a mapping"),
    ("images: {cache_dir: [\n", "not valid YAML"),
    ("os_parameters:\n  timezone: {a: 1}\n", "os_parameters.timezone must be a string"),
])
def test_schema_errors_name_file_and_key(tmp_path, text, needle):
    f = tmp_path / "osdef.yaml"
    f.write_text(text)
    with pytest.raises(ConfigError) as info:
        config.load_file(f)
    assert str(f) in str(info.value) and needle in str(info.value)


def test_missing_explicit_config(tmp_path):
    with pytest.raises(ConfigError, match="OSDEF_CONFIG=.*no such file"):
        config.load(None, {"OSDEF_CONFIG": str(tmp_path / "nope.yaml")})
