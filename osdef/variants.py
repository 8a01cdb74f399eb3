"""Variants: variants/*.yaml → typed, schema-checked Variant objects.

A variant is what Ganeti's ``OS_VARIANT`` names (``image+debian-12``): which
image to lay down, with which filesystem, partition table and boot method,
which customization steps to skip, and OS-parameter defaults.  The file's
stem is the variant's name.  Schema errors name the file and the key.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from osdef import yamldoc
from osdef.errors import VariantError
from osdef.fsprofiles import DEFAULT_PROFILE, PROFILES
from osdef.vocab import (BOOT_MODES, DEFAULT_BOOT_MODE, DEFAULT_FILESYSTEM,
                          DEFAULT_PARTITION_TABLE, FILESYSTEMS, PARTITION_TABLES)

NAME_RE = re.compile(r"^[a-z0-9][a-z0-9._-]*\Z")
KEYS = {"description", "image", "filesystem", "partition_table", "boot", "skip_hooks",
        "os_parameters", "default", "mkfs"}


@dataclass(frozen=True)
class Variant:
    name: str
    description: str
    image: str
    filesystem: str = DEFAULT_FILESYSTEM
    partition_table: str = DEFAULT_PARTITION_TABLE
    boot: str = DEFAULT_BOOT_MODE
    skip_hooks: frozenset[str] = frozenset()
    os_parameters: dict[str, str] = field(default_factory=dict)
    default: bool = False  # the variant used when Ganeti passes none (API 10)
    mkfs: str = DEFAULT_PROFILE  # the ext feature profile of filesystems made for it (osdef.guest.mkfs)
    source: Path | None = None


def _fail(path: Path, key: str, message: str) -> VariantError:
    return VariantError(f"{path}: {key}: {message}")


def _choice(data: dict[str, Any], key: str, allowed: tuple[str, ...], default: str, path: Path) -> str:
    value = data.get(key, default)
    if not isinstance(value, str) or value not in allowed:
        return_text = ", ".join(allowed)
        raise _fail(path, key, f"{value!r} is not one of {return_text}")
    return value


def parse(data: Any, path: Path) -> Variant:
    """One variant document → Variant (pure; `path` is for messages and the name)."""
    name = path.stem
    if not NAME_RE.match(name):
        raise VariantError(f"{path}: the file name {name!r} is not a valid variant name "
                           "(lower-case letters, digits, '.', '_', '-')")
    if not isinstance(data, dict):
        raise VariantError(f"{path}: must be a YAML mapping of settings")
    for key in data:
        if key not in KEYS:
            raise _fail(path, str(key), f"unknown key (allowed: {', '.join(sorted(KEYS))})")
    for key in ("description", "image"):
        if not isinstance(data.get(key), str) or not data[key].strip():
            raise _fail(path, key, "required, a non-empty string")
    skip = data.get("skip_hooks", [])
    if not isinstance(skip, list) or not all(isinstance(s, str) and s for s in skip):
        raise _fail(path, "skip_hooks", "must be a list of hook names")
    osp = data.get("os_parameters", {}) or {}
    if not isinstance(osp, dict):
        raise _fail(path, "os_parameters", "must be a mapping of parameter: value")
    os_parameters = {}
    for k, v in osp.items():
        text = yamldoc.scalar_text(v)
        if text is None:
            raise _fail(path, f"os_parameters.{k}", "must be a string")
        os_parameters[str(k)] = text
    default = data.get("default", False)
    if not isinstance(default, bool):
        raise _fail(path, "default", "must be true or false")
    mkfs = _choice(data, "mkfs", tuple(PROFILES), DEFAULT_PROFILE, path)
    return Variant(
        name=name,
        description=data["description"].strip(),
        image=data["image"].strip(),
        filesystem=_choice(data, "filesystem", FILESYSTEMS, DEFAULT_FILESYSTEM, path),
        partition_table=_choice(data, "partition_table", PARTITION_TABLES,
                                DEFAULT_PARTITION_TABLE, path),
        boot=_choice(data, "boot", BOOT_MODES, DEFAULT_BOOT_MODE, path),
        skip_hooks=frozenset(skip),
        os_parameters=os_parameters,
        default=default,
        mkfs=mkfs,
        source=path,
    )


def load_file(path: Path) -> Variant:
    return parse(yamldoc.load(path, VariantError), path)


@dataclass(frozen=True)
class Catalog:
    """All variants of one directory, in variants.list order."""

    variants: tuple[Variant, ...]
    directory: Path

    def names(self) -> list[str]:
        return [v.name for v in self.variants]

    def default(self) -> Variant:
        for v in self.variants:
            if v.default:
                return v
        return self.variants[0]

    def get(self, name: str | None) -> Variant:
        if name is None or name == "":
            return self.default()
        for v in self.variants:
            if v.name == name:
                return v
        raise VariantError(f"unknown variant {name!r}; valid variants: {', '.join(self.names())}")

    def variants_list(self) -> str:
        """The text of Ganeti's variants.list (default variant first)."""
        ordered = [self.default()] + [v for v in self.variants if v is not self.default()]
        return "".join(f"{v.name}\n" for v in ordered)


def load_dir(directory: Path, site_dir: Path | None = None) -> Catalog:
    """The variants of directory, plus a site's own from site_dir (/etc/osdef/variants.d;
    a missing site dir adds none).  A site variant may not reuse a built-in name."""
    directory = Path(directory)
    files = sorted(directory.glob("*.yaml"))
    if not files:
        raise VariantError(f"{directory}: no variant files (*.yaml) found")
    if site_dir is not None and Path(site_dir).is_dir():
        files += sorted(Path(site_dir).glob("*.yaml"))
    variants = tuple(load_file(f) for f in files)
    seen: dict[str, Path] = {}
    for v in variants:
        if v.name in seen:
            raise VariantError(f"{v.source}: variant {v.name!r} is already defined by {seen[v.name]}; "
                               "give the site variant another file name")
        seen[v.name] = v.source  # type: ignore[assignment]
    defaults = [v.name for v in variants if v.default]
    if len(defaults) > 1:
        raise VariantError(f"{directory}: more than one variant says default: true ({', '.join(defaults)})")
    return Catalog(variants=variants, directory=directory)
