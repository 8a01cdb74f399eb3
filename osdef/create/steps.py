"""The customization steps: load them from hooks/ and the site's hooks dir, order, check, run.

Built-in steps are `hooks/NN-name.py` files, each defining `NAME` (the name a
variant uses to skip it) and `run(ctx)`, optionally `AFTER` / `BEFORE` (step
names, osdef.create.steporder); they run in order of NN then name, as far as
their declarations allow.

Site hooks live in SiteConfig.hooks_dir (default /etc/osdef/hooks.d; a missing
directory means none) and run after the built-in steps, in file-name order,
unless a `*.py` one declares AFTER / BEFORE:
  - `*.py` files: loaded like the built-in steps; `run(ctx)` gets the same
    osdef.create.context.StepContext (the appliance session is ctx.guest);
  - other executable files: copied into the guest as /tmp/osdef-hook and run
    there, chrooted, through the appliance (/bin/sh must exist in the guest).
    They get OSDEF_HOSTNAME, OSDEF_OLD_HOSTNAME, OSDEF_SERIAL_CONSOLE (yes|no),
    OSDEF_ROOT_UUID and OSDEF_BOOT in their environment; a non-zero exit fails
    the create.
Files starting with '.' or ending in '~', and non-executable non-.py files, are
ignored (logged).  Site hooks never run on the host's root filesystem.

load_steps() does all the loading and checking (unknown skip names, broken
files, bad order declarations): create calls it before its first write, and
osdef.create.runner.run_steps() runs what it loaded.
"""

from __future__ import annotations

import importlib.util
import os
import re
import shlex
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

from osdef.errors import GuestError
from osdef.guest.session import one_line
from osdef.create.steporder import order
from osdef.paths import data_dir


BUILTIN_HOOKS_DIR = data_dir("hooks")
_BUILTIN_NAME = re.compile(r"^(\d+)-[A-Za-z0-9_-]+\.py\Z")
GUEST_HOOK_PATH = "/tmp/osdef-hook"


@dataclass(frozen=True)
class Hook:
    """One loaded step: its name, file, run(ctx) and declared order."""

    name: str
    path: Path
    run: Callable[[Any], None]
    after: tuple[str, ...] = ()
    before: tuple[str, ...] = ()
    site: bool = False
    excludable: bool = True  # a variant may skip it (built-in steps declare EXCLUDABLE, as snf-image's tasks)
    summary: str = ""  # the first line of its docstring (hooks/README.md's table)


@dataclass(frozen=True)
class Steps:
    """The loaded steps in run order, and the built-in ones the variant skips."""

    hooks: tuple[Hook, ...]
    skip: frozenset[str] = frozenset()

    def runs(self, hook: Hook) -> bool:
        return hook.site or hook.name not in self.skip

    def will_run(self, name: str) -> bool:
        """A built-in step of that name is loaded and not skipped."""
        return any(h.name == name and not h.site and self.runs(h) for h in self.hooks)


def _load_module(path: Path) -> ModuleType:
    module_name = "osdef_hook_" + re.sub(r"\W", "_", path.stem)
    spec = importlib.util.spec_from_file_location(module_name, path)
    if spec is None or spec.loader is None:
        raise GuestError(f"hook {path}: cannot be loaded as Python")
    module = importlib.util.module_from_spec(spec)
    keep, sys.dont_write_bytecode = sys.dont_write_bytecode, True  # nothing into the OS dir's
    try:                                                           # hooks/ (or a site's hooks.d)
        spec.loader.exec_module(module)
    except Exception as exc:
        raise GuestError(f"hook {path}: cannot be loaded: {one_line(repr(exc))}") from None
    finally:
        sys.dont_write_bytecode = keep
    return module


def _names(module: ModuleType, path: Path, attr: str) -> tuple[str, ...]:
    value: Any = getattr(module, attr, ())
    if isinstance(value, str) or not isinstance(value, (tuple, list)) \
            or not all(isinstance(v, str) and v for v in value):
        raise GuestError(f"hook {path}: {attr} must be a tuple of step names")
    return tuple(value)


def _python_hook(path: Path, site: bool) -> Hook:
    module = _load_module(path)
    run = getattr(module, "run", None)
    name = path.name if site else getattr(module, "NAME", None)
    if not callable(run) or not isinstance(name, str) or not name:
        raise GuestError(f"hook {path}: must define NAME (a string) and run(ctx)")
    excludable = getattr(module, "EXCLUDABLE", None)
    if not site and not isinstance(excludable, bool):
        raise GuestError(f"hook {path}: must say EXCLUDABLE = True or False (may a variant skip it?)")
    summary = (module.__doc__ or "").strip().splitlines()[0] if module.__doc__ else ""
    return Hook(name, path, run, _names(module, path, "AFTER"), _names(module, path, "BEFORE"), site,
                bool(excludable) if not site else True, summary)


def _builtin_hooks(directory: Path) -> list[Hook]:
    files = [p for p in Path(directory).iterdir() if _BUILTIN_NAME.match(p.name)]
    files.sort(key=lambda p: (int(_BUILTIN_NAME.match(p.name).group(1)), p.name))  # type: ignore[union-attr]
    hooks = [_python_hook(p, site=False) for p in files]
    names = [h.name for h in hooks]
    dupes = {n for n in names if names.count(n) > 1}
    if dupes:
        raise GuestError(f"hooks in {directory}: duplicate NAME {', '.join(sorted(dupes))}")
    return hooks


def load_builtin_hooks(directory: Path = BUILTIN_HOOKS_DIR) -> list[Hook]:
    """The built-in steps in run order."""
    return order(_builtin_hooks(directory))


def builtin_hook_names(directory: Path = BUILTIN_HOOKS_DIR) -> list[str]:
    """The names a variant may list to skip steps, in run order."""
    return [h.name for h in load_builtin_hooks(directory)]


def _site_hooks(directory: Path, log: Callable[[str], None]) -> list[Hook]:
    hooks: list[Hook] = []
    for path in sorted(Path(directory).iterdir()):
        if path.name.startswith(".") or path.name.endswith("~") or not path.is_file():
            continue
        if path.suffix == ".py":
            hooks.append(_python_hook(path, site=True))
        elif os.access(path, os.X_OK):
            hooks.append(Hook(path.name, path, _guest_executable(path), site=True))
        else:
            log(f"site hook {path} is neither *.py nor executable: ignored")
    return hooks


def _guest_executable(path: Path) -> Callable[[Any], None]:
    def run(ctx: Any) -> None:
        g = ctx.guest
        g.mkdir("/tmp")
        g.upload(str(path), GUEST_HOOK_PATH)
        g.chmod(GUEST_HOOK_PATH, 0o755)
        env = {
            "OSDEF_HOSTNAME": ctx.plan.hostname,
            "OSDEF_OLD_HOSTNAME": "",  # create: there is no old name
            "OSDEF_SERIAL_CONSOLE": "yes" if ctx.plan.serial_console else "no",
            "OSDEF_ROOT_UUID": ctx.root.uuid,
            "OSDEF_BOOT": ctx.plan.boot,
        }
        assign = " ".join(f"{k}={shlex.quote(v)}" for k, v in env.items())
        try:
            out = g.sh(f"{assign} {GUEST_HOOK_PATH}", what=f"site hook {path.name}")
        finally:
            g.remove(GUEST_HOOK_PATH)
        for line in out.splitlines()[-20:]:
            ctx.log(f"  {path.name}: {line}")
    return run


def load_steps(*, skip: set[str] | frozenset[str] = frozenset(), builtin_dir: Path = BUILTIN_HOOKS_DIR,
               site_dir: Path | None = None, log: Callable[[str], None] = lambda _m: None) -> Steps:
    """Load the built-in steps and the site hooks, check the names to skip and the order
    declarations; GuestError if any is wrong.  Create calls this before its first write."""
    hooks = _builtin_hooks(builtin_dir)
    unknown = set(skip) - {h.name for h in hooks}
    if unknown:
        raise GuestError(f"cannot skip unknown customization step(s) {', '.join(sorted(unknown))}"
                         f" (known: {', '.join(h.name for h in order(hooks))})")
    required = sorted(h.name for h in hooks if h.name in skip and not h.excludable)
    if required:
        raise GuestError(f"customization step(s) {', '.join(required)} may not be skipped "
                         f"(EXCLUDABLE = False in {', '.join(str(h.path) for h in hooks if h.name in required)})")
    if site_dir is not None and Path(site_dir).is_dir():
        hooks.extend(_site_hooks(Path(site_dir), log))
    return Steps(tuple(order(hooks)), frozenset(skip))


def markdown_table(directory: Path = BUILTIN_HOOKS_DIR) -> str:
    """hooks/README.md's table of the built-in steps, made from the steps themselves (``osdef steps --markdown``)."""
    def names(items: tuple[str, ...]) -> str:
        return ", ".join("every other built-in step" if n == "*" else n for n in items)

    lines = ["| step | NAME | does | may a variant skip it | declared order |", "|---|---|---|---|---|"]
    for hook in load_builtin_hooks(directory):
        number = _BUILTIN_NAME.match(hook.path.name).group(1)  # type: ignore[union-attr]
        declared = "; ".join(part for part in (f"after {names(hook.after)}" if hook.after else "",
                                                f"before {names(hook.before)}" if hook.before else "") if part)
        lines.append(f"| {number} | {hook.name} | {hook.summary} | {'yes' if hook.excludable else 'no'} | "
                     f"{declared or '—'} |")
    return "\n".join(lines) + "\n"
