"""The five OS scripts: turn Ganeti's environment into one call each.

Each function validates all of its input first (environment, variant, OS
parameters, site config) and only then touches a disk.  The real work lives
elsewhere: osdef.pipeline for create/rename (libguestfs), osdef.stream for
export/import (pure block I/O).
"""

from __future__ import annotations

import os
import stat
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

from osdef import config as siteconfig
from osdef import variants as variantmod
from osdef.errors import EnvError, OsdefError
from osdef.ganeti import environment as genv
from osdef.ganeti import params as osparams


def say(message: str) -> None:
    """One short line per step: Ganeti keeps the last 20 lines of create/rename output."""
    sys.stderr.write(f"osdef: {message}\n")
    sys.stderr.flush()


@dataclass(frozen=True)
class Context:
    """What every script knows before it starts working."""

    os_dir: Path
    environ: Mapping[str, str]
    config: siteconfig.SiteConfig
    catalog: variantmod.Catalog | None
    instance: genv.Instance
    variant: variantmod.Variant | None
    params: dict[str, Any]


def variants_dir(os_dir: Path) -> Path:
    """Variants of an installed OS dir; a source checkout's when run from the tree."""
    installed = os_dir / "variants"
    if installed.is_dir():
        return installed
    from osdef.paths import source_root

    return source_root() / "variants"


def load_context(script: str, os_dir: Path, environ: Mapping[str, str]) -> Context:
    instance = genv.load_instance(environ, script)
    config = siteconfig.load(os_dir, environ)
    catalog = variant = None
    if script in ("create", "rename", "verify"):
        catalog = variantmod.load_dir(variants_dir(os_dir))
        variant = catalog.get(instance.variant)
    source = str(config.source) if config.source else "site config"
    params = osparams.resolve(
        instance.os_params,
        variant_defaults=variant.os_parameters if variant else None,
        site_defaults=config.os_param_defaults,
        site_source=source,
    )
    return Context(os_dir, environ, config, catalog, instance, variant, params)


def _check_disk(disk: genv.Disk) -> None:
    try:
        st = os.stat(disk.path)
    except FileNotFoundError:
        raise EnvError(f"DISK_{disk.index}_PATH={disk.path}: no such file or device") from None
    except OSError as exc:
        raise EnvError(f"DISK_{disk.index}_PATH={disk.path}: {exc.strerror}") from None
    if not (stat.S_ISREG(st.st_mode) or stat.S_ISBLK(st.st_mode)):
        raise EnvError(f"DISK_{disk.index}_PATH={disk.path} is neither a file nor a block device")


# -- the scripts -----------------------------------------------------------------

def verify(args: list[str], os_dir: Path, environ: Mapping[str, str]) -> int:
    """`verify parameters`: one line per bad parameter on stderr, exit 1 if any."""
    instance = genv.load_instance(environ, "verify")
    config = siteconfig.load(os_dir, environ)
    lines = []
    variant = None
    try:
        variant = variantmod.load_dir(variants_dir(os_dir)).get(instance.variant)
    except OsdefError as exc:
        lines.append(str(exc))
    source = str(config.source) if config.source else "site config"
    merged = osparams.merge(instance.os_params,
                            variant_defaults=variant.os_parameters if variant else None,
                            site_defaults=config.os_param_defaults, site_source=source)
    lines.extend(p.message for p in merged.problems())
    for line in lines:
        sys.stderr.write(line + "\n")
    return 1 if lines else 0


def create(os_dir: Path, environ: Mapping[str, str]) -> int:
    ctx = load_context("create", os_dir, environ)
    for disk in ctx.instance.disks:
        _check_disk(disk)
    from osdef import pipeline

    pipeline.create(ctx, say)
    return 0


def rename(os_dir: Path, environ: Mapping[str, str]) -> int:
    ctx = load_context("rename", os_dir, environ)
    for disk in ctx.instance.disks:
        _check_disk(disk)
    from osdef import pipeline

    pipeline.rename(ctx, say)
    return 0


def export(os_dir: Path, environ: Mapping[str, str]) -> int:
    ctx = load_context("export", os_dir, environ)
    target = genv.load_export_target(environ)
    from osdef.stream import export_disk

    metadata = {
        "instance": ctx.instance.name,
        "instance_uuid": ctx.instance.uuid,
        "disk_index": target.index,
        "os": ctx.instance.os,
        "variant": ctx.instance.variant,
    }
    written = export_disk(target.device, sys.stdout.fileno(), size_fd=target.size_fd,
                          fmt=ctx.params["export_format"],
                          compression=ctx.params["export_compression"], metadata=metadata,
                          content=ctx.params["export_content"], warn=say)
    say(f"exported disk {target.index}: {written} bytes written")
    return 0


def import_(os_dir: Path, environ: Mapping[str, str]) -> int:
    load_context("import", os_dir, environ)
    target = genv.load_import_target(environ)
    from osdef.stream import import_disk

    r = import_disk(sys.stdin.fileno(), target.device, size_fd=target.size_fd)
    kind = "osdef stream" if r.kind == "stream" else "raw dump"
    say(f"imported disk {target.index}: {kind}{' (zstd)' if r.compressed else ''}, "
        f"{r.input_bytes} bytes read, {r.data_bytes >> 20} MiB of data written, "
        f"{r.zeroed_bytes >> 20} MiB zeroed without writing")
    return 0


def run(script: str, args: list[str], *, os_dir: Path, environ: Mapping[str, str]) -> int:
    if script == "verify":
        return verify(args, os_dir, environ)
    if script == "create":
        return create(os_dir, environ)
    if script == "rename":
        return rename(os_dir, environ)
    if script == "export":
        return export(os_dir, environ)
    if script == "import":
        return import_(os_dir, environ)
    raise ValueError(f"unknown script {script!r}")
