"""The installed OS dir, driven like Ganeti drives it: clean env, cwd = OS dir."""

import hashlib
import os
import subprocess
import sys

import pytest

from osdef.ganeti import params
from osdef.scripts import osdir
from tests.conftest import clean_env
from tests.ganeti_env import captured

SCRIPTS = ("create", "export", "import", "rename", "verify")


def run(os_dir, script, env, *args, stdin=subprocess.DEVNULL):
    return subprocess.run([str(os_dir / script), *args], cwd=os_dir, env=env, stdin=stdin,
                          capture_output=True, text=True, timeout=60)


def test_install_writes_what_ganeti_reads(installed_os_dir):
    d = installed_os_dir
    for s in SCRIPTS:
        assert os.access(d / s, os.X_OK)
    assert (d / "ganeti_api_version").read_text() == "20\n15\n10\n"
    assert (d / "parameters.list").read_text() == params.parameters_list()
    assert (d / "variants.list").read_text().split() == ["debian", "debian-12", "debian-13"]
    assert (d / "variants" / "debian-12.yaml").is_file()
    assert (d / "osdef.yaml").is_file()
    assert osdir.diagnose(d) == []


def test_a_launcher_of_an_older_install_is_diagnosed_and_rewritten_by_install(tmp_path):
    """OS dirs installed before osdef.scripts imported osdef.ganeti.entry, an alias that is gone:
    diagnose names each such launcher, and re-running the install writes current ones."""
    target = tmp_path / "image"
    source = __import__("osdef.paths").paths.data_root()
    osdir.install(target, source=source)
    assert "from osdef.scripts.entry import launcher_main" in (target / "verify").read_text()
    old = (target / "verify").read_text().replace("osdef.scripts.entry", "osdef.ganeti.entry")
    (target / "verify").write_text(old)
    problems = osdir.diagnose(target)
    assert len(problems) == 1 and "verify" in problems[0] and "cannot import osdef.ganeti.entry" in problems[0]
    osdir.install(target, source=source)
    assert osdir.diagnose(target) == []
    r = run(target, "verify", clean_env(), "--help")
    assert r.returncode == 0 and r.stdout.startswith("usage: verify parameters")


def test_install_is_idempotent(tmp_path):
    target = tmp_path / "image"
    for _ in range(2):
        subprocess.run([sys.executable, "-m", "osdef.cli", "install", "--os-dir", str(target)],
                       check=True, capture_output=True)
    assert osdir.diagnose(target) == []
    assert not [p for p in target.parent.iterdir() if p.name.startswith(".")]


def test_install_rejects_bad_config_before_writing(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("imagez: 1\n")
    target = tmp_path / "image"
    r = subprocess.run([sys.executable, "-m", "osdef.cli", "install", "--os-dir", str(target),
                        "--config", str(bad)], capture_output=True, text=True)
    assert r.returncode == 1
    assert r.stderr.count("\n") == 1 and "unknown key imagez" in r.stderr
    assert not target.exists()


def test_diagnose_finds_broken_os_dir(tmp_path):
    target = tmp_path / "image"
    osdir.install(target, source=__import__("osdef.paths").paths.data_root())
    (target / "parameters.list").write_text("\n# comment\n")
    os.chmod(target / "export", 0o644)
    problems = osdir.diagnose(target)
    assert any("export: missing or not executable" in p for p in problems)
    assert any("parameters.list line 1" in p for p in problems)


@pytest.mark.parametrize("script", SCRIPTS)
def test_help_and_wrong_arguments(installed_os_dir, script):
    r = run(installed_os_dir, script, clean_env(), "--help")
    assert r.returncode == 0 and r.stdout.startswith("usage: ")
    r = run(installed_os_dir, script, clean_env(), "bogus")
    assert r.returncode == 2 and "usage: " in r.stderr


def test_verify_accepts_good_and_rejects_bad_parameters(installed_os_dir):
    env = clean_env(OS_API_VERSION="20", OS_NAME="image", OS_VARIANT="debian-12", DEBUG_LEVEL="0",
                    OSP_NETWORK="dhcp", OSP_SWAP_SIZE="1G")
    r = run(installed_os_dir, "verify", env, "parameters")
    assert (r.returncode, r.stderr) == (0, "")
    secret = "$1$oldmd5$abcdefghijklmnopqrstuv"
    env.update(OSP_NETWORK="bogus", OSP_TIMEZONE="Nowhere/Town", OSP_ROOT_PASSWORD_HASH=secret)
    r = run(installed_os_dir, "verify", env, "parameters")
    assert r.returncode == 1
    lines = r.stderr.splitlines()
    assert len(lines) == 3
    assert lines[0].startswith("network='bogus' is invalid")
    assert lines[1].startswith("root_password_hash=(value hidden: secret) is invalid")
    assert lines[2].startswith("timezone='Nowhere/Town' is invalid")
    assert secret not in r.stderr and "oldmd5" not in r.stderr


def test_verify_with_captured_ganeti_environment(installed_os_dir):
    # Ganeti's capture used a dummy OS whose params we do not declare: each is reported, one per line
    step, env = captured("verify")[0]
    env = dict(env, OS_VARIANT="debian-12")
    r = run(installed_os_dir, "verify", env, "parameters")
    assert r.returncode == 1
    names = {x[4:].lower() for x in env if x.startswith("OSP_")}
    assert len(r.stderr.splitlines()) == len(names)
    assert "secretvalue" in env.values()
    assert all("unknown OS parameter" in line for line in r.stderr.splitlines())


def test_verify_unknown_variant(installed_os_dir):
    r = run(installed_os_dir, "verify", clean_env(OS_API_VERSION="20", OS_VARIANT="gentoo"), "parameters")
    assert r.returncode == 1
    assert r.stderr == "unknown variant 'gentoo'; valid variants: debian-12, debian-13, debian\n"


def _disk(tmp_path, size=4 << 20):
    path = tmp_path / "disk0"
    path.write_bytes(bytes([0xAB]) * size)
    return path


def _digest(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _create_env(disk, **over):
    env = clean_env(OS_API_VERSION="20", OS_NAME="image", OS_VARIANT="debian-12", DEBUG_LEVEL="0",
                    INSTANCE_NAME="web1.example.org", INSTANCE_OS="image+debian-12",
                    DISK_COUNT="1", DISK_0_PATH=str(disk), DISK_0_SIZE="4", NIC_COUNT="0")
    for k, v in over.items():
        if v is None:
            env.pop(k, None)
        else:
            env[k] = v
    return env


@pytest.mark.parametrize("over, needle", [
    ({"OS_VARIANT": "gentoo"}, "unknown variant 'gentoo'; valid variants: debian-12, debian-13, debian"),
    ({"OS_API_VERSION": "30"}, "OS_API_VERSION=30 is not supported"),
    ({"DISK_COUNT": "2"}, "DISK_COUNT=2 but DISK_1_PATH is not set"),
    ({"DISK_COUNT": "0"}, "DISK_COUNT=0 but DISK_0_* is set"),
    ({"OSP_NETWORK": "wifi"}, "network='wifi' is invalid"),
    ({"OSP_ROOT_PASSWORD_HASH": "hunter2hunter2"}, "root_password_hash=(value hidden: secret)"),
    ({"INSTANCE_NAME": "no_underscores.example.org"}, "is not a valid host name"),
    ({"NIC_COUNT": "1"}, "NIC_COUNT=1 but NIC_0_MAC is not set"),
])
def test_bad_create_input_one_line_and_disk_untouched(installed_os_dir, tmp_path, over, needle):
    disk = _disk(tmp_path)
    before = _digest(disk)
    r = run(installed_os_dir, "create", _create_env(disk, **over))
    assert r.returncode == 1
    assert len(r.stderr.splitlines()) == 1, r.stderr
    assert needle in r.stderr
    assert "Traceback" not in r.stderr and "hunter2" not in r.stderr
    assert _digest(disk) == before


def test_missing_disk_path(installed_os_dir, tmp_path):
    r = run(installed_os_dir, "create", _create_env(tmp_path / "nope"))
    assert r.returncode == 1 and "DISK_0_PATH=" in r.stderr and "no such file or device" in r.stderr


def test_diagnose_runs_each_launchers_interpreter(tmp_path):
    # the host's /usr/bin/python3 has no osdef (the venv's is an editable install): as on a node
    # where the launchers were bound to an interpreter without the package, every script would fail
    target = tmp_path / "image"
    osdir.install(target, source=__import__("osdef.paths").paths.data_root(), python="/usr/bin/python3")
    assert (target / "create").read_text().startswith("#!/usr/bin/python3 -I\n")
    problems = osdir.diagnose(target)
    assert len(problems) == len(SCRIPTS)
    assert all("its interpreter /usr/bin/python3 cannot import osdef.scripts.entry: "
               "ModuleNotFoundError: No module named 'osdef'" in p for p in problems), problems
    r = subprocess.run([sys.executable, "-m", "osdef.cli", "diagnose", "--os-dir", str(target)],
                       capture_output=True, text=True)
    assert r.returncode == 1 and r.stderr.count("\n") == len(SCRIPTS)


def test_diagnose_names_a_launcher_of_another_osdef_version(tmp_path):
    target = tmp_path / "image"
    osdir.install(target, source=__import__("osdef.paths").paths.data_root())
    (target / "rename").write_text((target / "rename").read_text().replace(
        "from osdef.scripts.entry import", "from osdef.nonexistent import"))
    problems = osdir.diagnose(target)
    assert problems == [f"{target}/rename: its interpreter {sys.executable} cannot import "
                        "osdef.nonexistent: ModuleNotFoundError: No module named 'osdef.nonexistent'"]


def test_variants_list_may_name_a_site_variant(tmp_path):
    site = tmp_path / "variants.d"
    site.mkdir()
    config = tmp_path / "osdef.yaml"
    config.write_text(f"variants_dir: {site}\n")
    target = tmp_path / "image"
    osdir.install(target, source=__import__("osdef.paths").paths.data_root(), config_file=config)
    with open(target / "variants.list", "a") as f:
        f.write("web\n")
    assert osdir.diagnose(target) == [
        f"{target}/variants.list names web, defined neither in {target}/variants/ nor in {site}: "
        "add the variant file or remove the line"]
    (site / "web.yaml").write_text("description: our web servers\nimage: debian-12\n")
    assert osdir.diagnose(target) == []
    env = clean_env(OS_API_VERSION="20", OS_NAME="image", OS_VARIANT="web", DEBUG_LEVEL="0")
    r = run(target, "verify", env, "parameters")
    assert (r.returncode, r.stderr) == (0, "")


def test_loading_the_hooks_writes_no_bytecode_into_the_os_dir(installed_os_dir):
    from osdef.create.steps import load_steps

    before = sorted(p.relative_to(installed_os_dir) for p in installed_os_dir.rglob("*"))
    steps = load_steps(builtin_dir=installed_os_dir / "hooks", site_dir=installed_os_dir / "none")
    assert len(steps.hooks) > 10
    assert sorted(p.relative_to(installed_os_dir) for p in installed_os_dir.rglob("*")) == before
