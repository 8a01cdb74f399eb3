"""`make demo`: build the default image if absent, create a demo instance disk, show it.

Runs on a fresh node as root: installs the OS definition into .demo/os/image
with a demo site config, makes sure the default variant's image exists
(building it with diskimage-builder when absent), runs `osdef try create` on a
sparse 10 GiB file exactly as Ganeti would, then opens the disk read-only
through libguestfs and prints what is on it.

libguestfs settings are not hard-coded: the demo launches one appliance with
the defaults (KVM) and falls back to TCG only when that fails, saying so.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import yaml

from osdef import config as siteconfig
from osdef import variants as variantmod
from osdef.errors import OsdefError
from osdef.paths import data_root

DEMO_NAME = "demo.example.org"
DEMO_SIZE = "10G"


def say(text: str) -> None:
    print(f"demo: {text}", flush=True)


KVM_PROBE = "from osdef.guest.session import probe_launch; probe_launch()"
KVM_PROBE_SECONDS = 60  # a KVM launch takes a few seconds; a TCG fallback or a hang takes longer


def kvm_works() -> bool:
    """Can libguestfs launch with its defaults (KVM) here, within KVM_PROBE_SECONDS?

    Nested KVM often cannot: qemu aborts on some machines and spins forever on
    others (seen on this project's machine), so the probe runs in a process
    group of its own that is killed when the time is up.
    """
    proc = subprocess.Popen([sys.executable, "-c", KVM_PROBE], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        return proc.wait(timeout=KVM_PROBE_SECONDS) == 0
    except subprocess.TimeoutExpired:
        return False
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def write_demo_config(path: Path, tcg: bool) -> Path:
    cache_dir = os.environ.get("OSDEF_DEMO_CACHE", str(siteconfig.DEFAULT_IMAGE_DIR))
    doc: dict[str, dict[str, object]] = {"images": {"cache_dir": cache_dir, "build_on_demand": True}}
    if tcg:
        doc["libguestfs"] = {"backend_settings": ["force_tcg"]}
    path.write_text("# written by `make demo`\n" + yaml.safe_dump(doc, sort_keys=False))
    return path


def describe(disk: Path, settings: siteconfig.LibguestfsSettings) -> None:
    """Print OS, host name, partitions and sizes, read through a read-only appliance."""
    from osdef.guest.session import GuestSession

    with GuestSession([disk], settings, readonly=True) as g:
        root = g.mount_inspected_root()
        print(f"  OS:         {g.os_name(root)}")
        print(f"  hostname:   {g.read_text('/etc/hostname').strip()}")
        hosts = [ln for ln in g.read_text("/etc/hosts").splitlines() if ln.startswith("127.0.1.1")]
        print(f"  /etc/hosts: {hosts[0] if hosts else '(no 127.0.1.1 line)'}")
        for line in g.read_text("/etc/fstab").splitlines():
            if line.strip() and not line.startswith("#"):
                print(f"  fstab:      {line}")
        for number, start, end in g.partition_table(g.device(0)).partitions:
            dev = g.partition(0, number)
            print(f"  partition:  {dev} {(end + 1 - start) >> 20} MiB {g.signature(dev) or '-'}")
        print(f"  root fs:    {g.device_size(root) >> 20} MiB, {g.free_bytes('/') >> 20} MiB free")
        kernels = [k for k in g.ls("/boot") if k.startswith("vmlinuz")]
        print(f"  kernel:     {', '.join(kernels) or '(none)'}")
    st = os.stat(disk)
    print(f"  disk file:  {disk}: {st.st_size >> 20} MiB apparent, {st.st_blocks * 512 >> 20} MiB allocated")


def main() -> int:
    root = data_root()
    work = root / ".demo"
    work.mkdir(exist_ok=True)
    try:
        say("checking whether libguestfs can use KVM here")
        tcg = not kvm_works()
        if tcg:
            say("KVM is not usable on this machine: the demo's site config uses TCG (slower)")
        cfg_file = write_demo_config(work / "osdef.yaml", tcg)
        cfg = siteconfig.load_file(cfg_file)
        os_dir = work / "os" / "image"
        subprocess.run([sys.executable, "-m", "osdef.cli", "install", "--os-dir", str(os_dir),
                        "--config", str(cfg_file)], check=True)
        variant = variantmod.load_dir(root / "variants").default()
        from osdef.images import ImageStore

        store = ImageStore(cfg.images, root / "images")
        if store.artifact(variant.image) is None:
            say(f"building image {variant.image} with diskimage-builder (a few minutes, once)")
        store.ensure(variant.image, allow_build=True, allow_fetch=True)
        disk = work / "demo.img"
        if disk.exists():
            disk.unlink()
        say(f"osdef try create: {DEMO_NAME}, variant {variant.name}, {DEMO_SIZE} sparse disk {disk}")
        rc = subprocess.run([sys.executable, "-m", "osdef.cli", "try", "create", "--os-dir", str(os_dir),
                             "-o", variant.name, "-n", DEMO_NAME, "--disk", f"{disk}:{DEMO_SIZE}",
                             "--nic", "ip=198.51.100.20,subnet=198.51.100.0/24,gateway=198.51.100.1",
                             "--serial-console"]).returncode
        if rc != 0:
            say(f"create failed (exit {rc})")
            return rc
        say("what is on the disk:")
        describe(disk, cfg.libguestfs)
        return 0
    except OsdefError as exc:
        print(f"demo: error: {exc}", file=sys.stderr)
        return 1
    except subprocess.CalledProcessError as exc:
        print(f"demo: error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
