"""`osdef try`: run an installed OS script the way Ganeti runs it, without a cluster.

The environment is built like Ganeti 3.0 builds it (the variable names and
shapes captured on a real cluster, see tests/fixtures/ganeti-env): a clean
environment with PATH=/sbin:/bin:/usr/sbin:/usr/bin, cwd = the OS dir, and for
export/import the extra HOME/LANG/LC_ALL of Ganeti's import-export daemon and
EXP_SIZE_FD=11 as a pipe whose content is printed.  ``create`` is preceded by
``verify parameters``, as ``gnt-instance add`` does.  The only non-Ganeti
variable passed is OSDEF_CONFIG, when --config is given.  A ``--disk rbd:pool/image``
is passed as Ganeti passes a userspace-only disk: DISK_N_URI and EXPORT_DISK_URI /
IMPORT_DISK_URI, no path (the image must exist; its size is read through librbd
with the site config's Ceph settings).
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import stat
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from osdef.disk import units
from osdef.errors import OsdefError
from osdef.ganeti import params as osparams

GANETI_PATH = "/sbin:/bin:/usr/sbin:/usr/bin"
EXP_SIZE_FD = 11
F_SETPIPE_SZ = 1031


class TrialError(OsdefError):
    pass


def parse_size(text: str) -> int:
    """A --disk size: bytes, or with K, M, G or T (powers of 1024)."""
    size = units.parse_size(text)
    if size is None:
        raise TrialError(f"size {text!r}: use a number with K, M, G or T (e.g. 10G)")
    return size


@dataclass
class DiskSpec:
    path: Path | None  # a file or block device; None for a URI
    size: int | None = None  # a file: create it sparse with this size if missing; after prepare_disks: the size
    uri: str | None = None  # rbd:pool/image[:id=…][:conf=…]

    @classmethod
    def parse(cls, text: str) -> DiskSpec:
        if text.lower().startswith("rbd:"):
            return cls(None, uri=text)
        if "://" in text:
            raise TrialError(f"--disk {text!r}: only paths and rbd:pool/image URIs are supported")
        path, _, size = text.partition(":")
        return cls(Path(path).absolute(), parse_size(size) if size else None)

    @property
    def location(self) -> str:
        """What DISK_N_PATH or DISK_N_URI says."""
        return self.uri if self.uri is not None else str(self.path)


NIC_KEYS = {
    "mac": "MAC", "ip": "IP", "mode": "MODE", "link": "LINK", "bridge": "BRIDGE", "name": "NAME",
    "vlan": "VLAN", "network": "NETWORK_NAME", "subnet": "NETWORK_SUBNET",
    "gateway": "NETWORK_GATEWAY", "subnet6": "NETWORK_SUBNET6", "gateway6": "NETWORK_GATEWAY6",
    "mac_prefix": "NETWORK_MAC_PREFIX", "tags": "NETWORK_TAGS",
}


def parse_nic(text: str) -> dict[str, str]:
    out = {}
    for item in filter(None, text.split(",")):
        key, sep, value = item.partition("=")
        if not sep or key not in NIC_KEYS:
            raise TrialError(f"--nic {text!r}: use key=value pairs with keys {', '.join(NIC_KEYS)}")
        out[NIC_KEYS[key]] = value
    return out


def parse_osp(items: list[str]) -> dict[str, str]:
    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise TrialError(f"-O {item!r}: use name=value")
        out[key.strip().replace("-", "_").lower()] = value
    return out


@dataclass
class Trial:
    """Inputs for one simulated Ganeti call."""

    os_dir: Path
    variant: str | None = None
    name: str = "try.example.org"
    disks: list[DiskSpec] = field(default_factory=list)
    nics: list[dict[str, str]] = field(default_factory=list)
    os_params: dict[str, str] = field(default_factory=dict)
    hv_params: dict[str, str] = field(default_factory=dict)
    reinstall: bool = False
    old_name: str | None = None
    debug: int = 0
    config: Path | None = None
    index: int = 0  # EXPORT_INDEX / IMPORT_INDEX: which disk export/import act on
    instance_uuid: str = field(default_factory=lambda: str(uuid.uuid4()))


def _default_mac(name: str, index: int) -> str:
    digest = hashlib.sha256(f"{name}/{index}".encode()).digest()
    return "aa:00:00:" + ":".join(f"{b:02x}" for b in digest[:3])


def prepare_disks(trial: Trial) -> None:
    """Missing files are created sparse with their size; then every disk (file, block device, or
    rbd: image through librbd) is sized once, as osdef.disk.device sizes it, and checked against
    the size given with it."""
    from osdef.disk import device

    if any(d.uri is not None for d in trial.disks):
        _configure_ceph(trial)
    for d in trial.disks:
        if d.path is not None and not d.path.exists():
            if d.size is None:
                raise TrialError(f"{d.path} does not exist; give a size to create it (--disk {d.path}:10G)")
            d.path.parent.mkdir(parents=True, exist_ok=True)
            with open(d.path, "wb") as f:
                f.truncate(d.size)
        size = device.disk_size(d.location, error=TrialError)
        if d.size is not None and size != d.size:
            raise TrialError(f"{d.path} exists with another size; remove it or drop the :SIZE")
        d.size = size


def _configure_ceph(trial: Trial) -> None:
    """The Ceph user and ceph.conf the scripts will use: the site config's (``--config`` or the OS dir's)."""
    from osdef import config as siteconfig
    from osdef.disk import ceph

    environ = {"OSDEF_CONFIG": str(trial.config)} if trial.config is not None else {}
    ceph.configure(siteconfig.load(trial.os_dir, environ).ceph)


def ganeti_environment(trial: Trial, script: str) -> dict[str, str]:
    """The environment Ganeti 3.0 passes to `script` for this trial."""
    os_name = trial.os_dir.name
    env = {
        "PATH": GANETI_PATH,
        "OS_API_VERSION": "20",
        "OS_NAME": os_name,
        "DEBUG_LEVEL": str(trial.debug),
    }
    if trial.variant:
        env["OS_VARIANT"] = trial.variant
    for key, value in trial.os_params.items():
        env["OSP_" + key.upper()] = value
    if script == "verify":
        return env
    now = f"{time.time():.6f}"
    env.update({
        "HYPERVISOR": "kvm",
        "INSTANCE_NAME": trial.name,
        "INSTANCE_OS": f"{os_name}+{trial.variant}" if trial.variant else os_name,
        "INSTANCE_UUID": trial.instance_uuid,
        "INSTANCE_PRIMARY_NODE": str(uuid.uuid5(uuid.NAMESPACE_DNS, os.uname().nodename)),
        "INSTANCE_SECONDARY_NODES": "",
        "INSTANCE_CTIME": now,
        "INSTANCE_MTIME": now,
        "INSTANCE_BE_always_failover": "False",
        "INSTANCE_BE_auto_balance": "True",
        "INSTANCE_BE_maxmem": "1024",
        "INSTANCE_BE_minmem": "1024",
        "INSTANCE_BE_spindle_use": "1",
        "INSTANCE_BE_vcpus": "1",
        "INSTANCE_HV_migration_mode": "live",
        "DISK_COUNT": str(len(trial.disks)),
        "NIC_COUNT": str(len(trial.nics)),
    })
    for key, value in trial.hv_params.items():
        env["INSTANCE_HV_" + key] = value
    env.update(_disk_variables(trial))
    env.update(_nic_variables(trial))
    if trial.reinstall:
        env["INSTANCE_REINSTALL"] = "1"
    if script == "rename":
        env["OLD_INSTANCE_NAME"] = trial.old_name or ""
    if script in ("export", "import"):
        env.update(_data_variables(trial, script))
    if trial.config is not None:
        env["OSDEF_CONFIG"] = str(trial.config)
    return env


def _disk_variables(trial: Trial) -> dict[str, str]:
    env = {}
    for i, d in enumerate(trial.disks):
        assert d.size is not None, "prepare_disks sizes every disk"
        if d.path is None:  # access=userspace: lib/backend.py OSEnvironment passes the URI and no path
            located = {f"DISK_{i}_URI": d.location, f"DISK_{i}_BACKEND_TYPE": "block"}
        else:
            located = {f"DISK_{i}_PATH": str(d.path),
                       f"DISK_{i}_BACKEND_TYPE": "block" if stat.S_ISBLK(os.stat(d.path).st_mode) else "file:loop"}
        env.update(located)
        env.update({f"DISK_{i}_SIZE": str(d.size >> 20), f"DISK_{i}_ACCESS": "rw",
                    f"DISK_{i}_UUID": str(uuid.uuid5(uuid.NAMESPACE_URL, d.location))})
    return env


def _nic_variables(trial: Trial) -> dict[str, str]:
    env = {}
    for i, nic in enumerate(trial.nics):
        values = {"MAC": _default_mac(trial.name, i), "MODE": "bridged", "LINK": "br0"}
        values.update(nic)
        if values.get("MODE") == "bridged":
            values.setdefault("BRIDGE", values.get("LINK", "br0"))
        values.setdefault("UUID", str(uuid.uuid5(uuid.NAMESPACE_URL, f"{trial.name}/nic{i}")))
        for key, value in values.items():
            env[f"NIC_{i}_{key}"] = value
    return env


def _data_variables(trial: Trial, script: str) -> dict[str, str]:
    """EXPORT_* / IMPORT_*, and what Ganeti's import-export daemon adds to the environment."""
    if not 0 <= trial.index < len(trial.disks):
        raise TrialError(f"disk index {trial.index}: only {len(trial.disks)} disk(s) given")
    disk = trial.disks[trial.index]
    prefix = script.upper()
    # _GetImportExportIoCommand: the device, or for a userspace-only disk its URI
    located = {f"{prefix}_DEVICE": disk.location, f"{prefix}_DISK_PATH": disk.location} if disk.uri is None \
        else {f"{prefix}_DISK_URI": disk.location}
    return {**located, f"{prefix}_INDEX": str(trial.index),
            "HOME": "/root", "LANG": "C.UTF-8", "LC_ALL": "C", "EXP_SIZE_FD": str(EXP_SIZE_FD)}


def _script(trial: Trial, script: str) -> str:
    path = trial.os_dir / script
    if not os.access(path, os.X_OK):
        raise TrialError(f"{path}: not an installed OS script; run `osdef install --os-dir {trial.os_dir}` first")
    return str(path)


def run_script(trial: Trial, script: str, *, args: tuple[str, ...] = (), stdin: int | IO[bytes] | None = None,
               stdout: int | IO[bytes] | None = None) -> subprocess.CompletedProcess[bytes]:
    env = ganeti_environment(trial, script)
    return subprocess.run([_script(trial, script), *args], cwd=trial.os_dir, env=env,
                          stdin=stdin if stdin is not None else subprocess.DEVNULL,
                          stdout=stdout, check=False)


def _say(text: str) -> None:
    sys.stderr.write(f"osdef try: {text}\n")
    sys.stderr.flush()


def run_with_size_fd(trial: Trial, script: str, *, stdin: int | IO[bytes], stdout_path: Path | None,
                     stdout_fd: int | None) -> tuple[int, int, str]:
    """Run export/import with EXP_SIZE_FD=11 as a pipe; return (rc, bytes on stdout, fd text)."""
    size_r, size_w = os.pipe()
    env = ganeti_environment(trial, script)
    out_r = None
    if script == "export":
        out_r, out_w = os.pipe()
        try:
            fcntl.fcntl(out_w, F_SETPIPE_SZ, units.MiB)
        except OSError:
            pass
        stdout_arg = out_w
    else:
        stdout_arg = None  # import: messages go to our stderr/stdout
    # Ganeti hands the size pipe over as fd 11: park whatever we have there meanwhile.
    try:
        saved = os.dup(EXP_SIZE_FD)
    except OSError:
        saved = None
    os.dup2(size_w, EXP_SIZE_FD)
    try:
        proc = subprocess.Popen([_script(trial, script)], cwd=trial.os_dir, env=env, stdin=stdin,
                                stdout=stdout_arg, pass_fds=(EXP_SIZE_FD,))
    finally:
        if saved is not None:
            os.dup2(saved, EXP_SIZE_FD)
            os.close(saved)
        else:
            os.close(EXP_SIZE_FD)
        os.close(size_w)
    written = 0
    if out_r is not None:
        assert stdout_arg is not None  # export: out_w, made with out_r
        os.close(stdout_arg)
        sink = os.open(stdout_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600) \
            if stdout_path else stdout_fd
        assert sink is not None  # export gets stdout_path or stdout_fd (try_export: fd 1)
        try:
            while chunk := os.read(out_r, units.MiB):
                view = memoryview(chunk)
                while view:
                    n = os.write(sink, view)
                    view = view[n:]
                written += len(chunk)
        finally:
            os.close(out_r)
            if stdout_path:
                os.close(sink)
    rc = proc.wait()
    size_text = b""
    while chunk := os.read(size_r, 4096):
        size_text += chunk
    os.close(size_r)
    return rc, written, size_text.decode("ascii", "replace").strip()


def try_create(trial: Trial) -> int:
    prepare_disks(trial)
    _say(f"verify parameters (OS_VARIANT={trial.variant or '(none)'})")
    rc = run_script(trial, "verify", args=("parameters",)).returncode
    if rc != 0:
        _say(f"verify failed (exit {rc}); Ganeti would refuse the instance")
        return rc
    _say(f"create {trial.name} on {', '.join(d.location for d in trial.disks)}")
    rc = run_script(trial, "create", stdout=sys.stderr.fileno()).returncode
    _say(f"create exited {rc}")
    return rc


def try_rename(trial: Trial) -> int:
    if not trial.old_name:
        raise TrialError("rename needs --old-name")
    rc = run_script(trial, "rename", stdout=sys.stderr.fileno()).returncode
    _say(f"rename exited {rc}")
    return rc


def try_export(trial: Trial, output: Path | None) -> int:
    if output is None and os.isatty(1):
        raise TrialError("export writes a binary stream: give --output FILE or redirect stdout")
    rc, written, size_text = run_with_size_fd(trial, "export", stdin=subprocess.DEVNULL,
                                              stdout_path=output, stdout_fd=1)
    _say(f"export exited {rc}; {written} bytes on stdout; EXP_SIZE_FD (fd 11) said {size_text or '(nothing)'}")
    if rc == 0 and size_text and size_text.isdigit() and int(size_text) != written:
        _say("note: the announced size differs from the bytes written (expected only with zstd)")
    return rc


def try_import(trial: Trial, input_path: Path | None) -> int:
    if input_path is not None and not input_path.is_file():
        raise TrialError(f"--input {input_path}: no such file")
    stdin = open(input_path, "rb") if input_path else sys.stdin.buffer  # noqa: SIM115 -- closed below
    try:
        rc, _, size_text = run_with_size_fd(trial, "import", stdin=stdin, stdout_path=None, stdout_fd=None)
    finally:
        if input_path:
            stdin.close()
    _say(f"import exited {rc}; EXP_SIZE_FD (fd 11) said {size_text or '(nothing)'}")
    return rc


def known_params() -> list[str]:
    return [p.name for p in osparams.PARAMETERS]
