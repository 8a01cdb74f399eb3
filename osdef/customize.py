"""The customization pipeline: load the ordered steps from hooks/, run them, then the site's own.

Built-in steps are `hooks/NN-name.py` files, each defining `NAME` (the name a
variant uses to skip it) and `run(ctx)`; they run in order of NN then name.

Site hooks live in SiteConfig.hooks_dir (default /etc/osdef/hooks.d; a missing
directory means none) and run after the built-in steps, in file-name order:
  - `*.py` files: loaded like the built-in steps; `run(ctx)` gets the same
    HookContext (the appliance session is ctx.guest);
  - other executable files: copied into the guest as /tmp/osdef-hook and run
    there, chrooted, through the appliance (/bin/sh must exist in the guest).
    They get OSDEF_HOSTNAME, OSDEF_OLD_HOSTNAME, OSDEF_SERIAL_CONSOLE (yes|no),
    OSDEF_ROOT_UUID and OSDEF_BOOT in their environment; a non-zero exit fails
    the create.
Files starting with '.' or ending in '~', and non-executable non-.py files, are
ignored (logged).  Site hooks never run on the host's root filesystem.
"""

from __future__ import annotations

import importlib.util
import os
import re
import shlex
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

from osdef.errors import GuestError, OsdefError
from osdef.guest.session import GuestSession, one_line

BUILTIN_HOOKS_DIR = Path(__file__).resolve().parent.parent / "hooks"
_BUILTIN_NAME = re.compile(r"^(\d+)-[A-Za-z0-9_-]+\.py\Z")
GUEST_HOOK_PATH = "/tmp/osdef-hook"


@dataclass
class HookContext:
    """Everything a customization step may use; `guest` has the root mounted at /."""

    guest: GuestSession
    hostname: str  # FQDN, as Ganeti's INSTANCE_NAME
    old_hostname: str | None = None
    serial_console: bool = False
    root_device: str = ""  # appliance device of the root fs, e.g. /dev/sda3
    root_uuid: str = ""
    root_fs_type: str = ""
    esp_uuid: str | None = None  # vfat UUID of the EFI system partition, if any
    disk_device: str = "/dev/sda"  # appliance device of DISK_0 (for grub-install)
    boot: str = "none"  # "bios" | "efi" | "none"
    grub_config: str = "osdef"  # "osdef" (render grub.cfg, fast) | "update-grub"
    params: dict[str, object] = field(default_factory=dict)  # typed OS params; may be empty
    log: Callable[[str], None] = print
    instance: Any = None  # osdef.ganeti.environment.Instance (NICs, disks, reinstall), if known
    saved_host_keys: dict[str, bytes] | None = None  # reinstall: the old installation's SSH host keys
    boot_area: Any = None  # osdef.guest.bootarea.BootArea already on the disk: skip grub-install
    boot_capture: Path | None = None  # where the bootloader step saves /boot/grub for the cache


@dataclass(frozen=True)
class Hook:
    """One loaded step."""

    name: str
    path: Path
    run: Callable[[HookContext], None]


def _load_module(path: Path) -> ModuleType:
    module_name = "osdef_hook_" + re.sub(r"\W", "_", path.stem)
    spec = importlib.util.spec_from_file_location(module_name, path)
    if spec is None or spec.loader is None:
        raise GuestError(f"hook {path}: cannot be loaded as Python")
    module = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(module)
    except Exception as exc:  # noqa: BLE001 - a broken hook file is an admin-facing error
        raise GuestError(f"hook {path}: cannot be loaded: {one_line(repr(exc))}") from None
    return module


def _python_hook(path: Path, need_name: bool) -> Hook:
    module = _load_module(path)
    run = getattr(module, "run", None)
    name = getattr(module, "NAME", None) if need_name else path.name
    if not callable(run) or not isinstance(name, str) or not name:
        raise GuestError(f"hook {path}: must define NAME (a string) and run(ctx)")
    return Hook(name, path, run)


def load_builtin_hooks(directory: Path = BUILTIN_HOOKS_DIR) -> list[Hook]:
    """The built-in steps in their declared order (NN-name.py)."""
    files = [p for p in Path(directory).iterdir() if _BUILTIN_NAME.match(p.name)]
    files.sort(key=lambda p: (int(_BUILTIN_NAME.match(p.name).group(1)), p.name))  # type: ignore[union-attr]
    hooks = [_python_hook(p, need_name=True) for p in files]
    names = [h.name for h in hooks]
    dupes = {n for n in names if names.count(n) > 1}
    if dupes:
        raise GuestError(f"hooks in {directory}: duplicate NAME {', '.join(sorted(dupes))}")
    return hooks


def builtin_hook_names(directory: Path = BUILTIN_HOOKS_DIR) -> list[str]:
    """The names a variant may list to skip steps."""
    return [h.name for h in load_builtin_hooks(directory)]


def _site_hooks(directory: Path, log: Callable[[str], None]) -> list[Hook]:
    hooks: list[Hook] = []
    for path in sorted(Path(directory).iterdir()):
        if path.name.startswith(".") or path.name.endswith("~") or not path.is_file():
            continue
        if path.suffix == ".py":
            hooks.append(_python_hook(path, need_name=False))
        elif os.access(path, os.X_OK):
            hooks.append(Hook(path.name, path, _guest_executable(path)))
        else:
            log(f"site hook {path} is neither *.py nor executable: ignored")
    return hooks


def _guest_executable(path: Path) -> Callable[[HookContext], None]:
    def run(ctx: HookContext) -> None:
        g = ctx.guest
        g.call("create /tmp in the guest", g.g.mkdir_p, "/tmp")
        g.call(f"copy {path} into the guest", g.g.upload, str(path), GUEST_HOOK_PATH)
        g.call("chmod the site hook", g.g.chmod, 0o755, GUEST_HOOK_PATH)
        env = {
            "OSDEF_HOSTNAME": ctx.hostname,
            "OSDEF_OLD_HOSTNAME": ctx.old_hostname or "",
            "OSDEF_SERIAL_CONSOLE": "yes" if ctx.serial_console else "no",
            "OSDEF_ROOT_UUID": ctx.root_uuid,
            "OSDEF_BOOT": ctx.boot,
        }
        assign = " ".join(f"{k}={shlex.quote(v)}" for k, v in env.items())
        try:
            out = g.sh(f"{assign} {GUEST_HOOK_PATH}", what=f"site hook {path.name}")
        finally:
            g.remove(GUEST_HOOK_PATH)
        for line in out.splitlines()[-20:]:
            ctx.log(f"  {path.name}: {line}")
    return run


def check_steps(*, skip: set[str] | frozenset[str] = frozenset(), builtin_dir: Path = BUILTIN_HOOKS_DIR,
                site_dir: Path | None = None, log: Callable[[str], None] = lambda _m: None) -> list[Hook]:
    """Load the built-in steps, check the names to skip and load the site hooks; GuestError if any is
    wrong.  Create calls this before its first write (a variant naming an unknown step, or a broken
    site hook, must leave the disk untouched), and run_hooks again for the steps it runs."""
    hooks = load_builtin_hooks(builtin_dir)
    unknown = set(skip) - {h.name for h in hooks}
    if unknown:
        raise GuestError(f"cannot skip unknown customization step(s) {', '.join(sorted(unknown))}"
                         f" (known: {', '.join(h.name for h in hooks)})")
    if site_dir is not None and Path(site_dir).is_dir():
        hooks.extend(_site_hooks(Path(site_dir), log))
    return hooks


def run_hooks(ctx: HookContext, *, skip: set[str] | frozenset[str] = frozenset(),
              builtin_dir: Path = BUILTIN_HOOKS_DIR, site_dir: Path | None = None) -> list[str]:
    """Run the built-in steps (minus `skip`), then the site hooks; return the names that ran."""
    hooks = check_steps(skip=skip, builtin_dir=builtin_dir)
    ran: list[str] = []
    for hook in hooks:
        if hook.name in skip:
            ctx.log(f"step {hook.name}: skipped by the variant")
            continue
        _run_one(hook, ctx)
        ran.append(hook.name)
    if site_dir is not None and Path(site_dir).is_dir():
        for hook in _site_hooks(Path(site_dir), ctx.log):
            _run_one(hook, ctx, site=True)
            ran.append(f"site:{hook.name}")
    return ran


def _run_one(hook: Hook, ctx: HookContext, site: bool = False) -> None:
    ctx.log(f"{'site hook' if site else 'step'} {hook.name}")
    try:
        hook.run(ctx)
    except OsdefError:
        raise
    except Exception as exc:  # noqa: BLE001 - name the hook, keep one line
        raise GuestError(f"{'site hook' if site else 'step'} {hook.name} ({hook.path}) failed:"
                         f" {one_line(repr(exc))}") from exc
