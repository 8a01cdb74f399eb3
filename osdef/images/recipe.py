"""Image recipes: images/<name>.yaml → a typed Recipe (a DIB build or a URL).

A recipe is either a diskimage-builder build::

    description: Debian 12 (bookworm) for Ganeti instances
    elements: [debian-minimal]
    release: bookworm
    packages: [grub-pc, openssh-server, ...]
    output: fs-image          # bare filesystem image (DIB -t raw, no `vm`)
    fs_type: ext4

or a downloaded artifact::

    url: https://example.org/debian-12.raw.zst
    sha256: 0123...           # mandatory
    format: fs-image          # fs-image | disk-raw | disk-qcow2 | tar

Parsing is pure: every schema error names the file and the key.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from osdef import yamldoc
from osdef.errors import ImageError
from osdef.vocab import DEFAULT_FILESYSTEM, DIB_KINDS, FILESYSTEMS, FS_IMAGE, URL_KINDS

NAME_RE = re.compile(r"^[a-z0-9][a-z0-9._-]{0,62}\Z")
SHA256_RE = re.compile(r"^[0-9a-f]{64}\Z")
PACKAGE_RE = re.compile(r"^[a-z0-9][a-z0-9+.-]*\Z")
ELEMENT_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*\Z")
ENV_NAME_RE = re.compile(r"^[A-Z_][A-Z0-9_]*\Z")

#: Artifact formats a DIB recipe may produce.
DIB_OUTPUTS = DIB_KINDS
#: Formats a downloaded file may declare (disk-qcow2 is converted to disk-raw when stored).
URL_FORMATS = URL_KINDS
FS_TYPES = FILESYSTEMS
#: what osdef does to DIB's output, part of every DIB digest: bumping it marks the
#: images built before as built from a changed recipe (2: e2fsck -f -p and fs_features
#: after the build)
DIB_BUILD_REVISION = 2

#: ext4 features a recipe may turn on after the build (tune2fs -O), when its guest's
#: GRUB reads them: metadata_csum_seed lets a create change the filesystem UUID by
#: rewriting the superblock instead of every metadata checksum
FS_FEATURES = ("metadata_csum_seed",)

_DIB_KEYS = {"description", "elements", "release", "architecture", "packages",
             "output", "fs_type", "fs_features", "environment"}
_URL_KEYS = {"description", "url", "sha256", "format", "fs_type"}


@dataclass(frozen=True)
class DibRecipe:
    """A diskimage-builder build."""

    elements: tuple[str, ...]
    release: str
    packages: tuple[str, ...] = ()
    architecture: str = "amd64"
    output: str = FS_IMAGE
    fs_type: str | None = DEFAULT_FILESYSTEM
    fs_features: tuple[str, ...] = ()
    environment: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class UrlRecipe:
    """An artifact downloaded from a URL and checked against its sha256."""

    url: str
    sha256: str
    format: str
    fs_type: str | None = None


@dataclass(frozen=True)
class Recipe:
    """One image recipe, as read from images/<name>.yaml."""

    name: str
    path: Path
    description: str
    source: DibRecipe | UrlRecipe

    @property
    def kind(self) -> str:
        return "dib" if isinstance(self.source, DibRecipe) else "url"

    def digest(self, element_dirs: list[Path] | None = None) -> str:
        """sha256 over the parsed recipe and the files of its local DIB elements.

        Two recipes that would build the same thing have the same digest; any
        change to a key or to a local element's file changes it.
        """
        h = hashlib.sha256()
        doc: dict[str, Any] = {"kind": self.kind, "source": asdict(self.source)}
        if isinstance(self.source, DibRecipe):
            doc["osdef_build"] = DIB_BUILD_REVISION
        h.update(json.dumps(doc, sort_keys=True).encode())
        if isinstance(self.source, DibRecipe):
            for base in element_dirs or []:
                for element in self.source.elements:
                    _hash_tree(h, base / element)
        return h.hexdigest()


def _hash_tree(h: Any, root: Path) -> None:
    if not root.is_dir():
        return
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        h.update(str(path.relative_to(root.parent)).encode() + b"\0")
        h.update(path.read_bytes())
        h.update(b"\0" if not (path.stat().st_mode & 0o111) else b"\1")


def check_name(name: str) -> str:
    """Image names are file names in the cache: lower case, no slashes."""
    if not NAME_RE.match(name):
        raise ImageError(
            f"invalid image name {name!r}: use lower-case letters, digits, '.', '_' and '-'"
        )
    return name


def load_recipe(path: Path) -> Recipe:
    """Read and validate images/<name>.yaml."""
    return parse_recipe(path.stem, yamldoc.load(path, ImageError, "recipe"), path)


def parse_recipe(name: str, data: Any, path: Path) -> Recipe:
    """Turn a recipe document into a Recipe; errors name the file and the key."""
    check_name(name)
    if not isinstance(data, dict):
        raise ImageError(f"{path}: a recipe must be a mapping")
    description = _opt_str(data, "description", path) or name
    if "url" in data:
        _reject_unknown(data, _URL_KEYS, path)
        source: DibRecipe | UrlRecipe = _parse_url(data, path)
    elif "elements" in data:
        _reject_unknown(data, _DIB_KEYS, path)
        source = _parse_dib(data, path)
    else:
        raise ImageError(f"{path}: a recipe needs either 'elements' (DIB build) or 'url'")
    return Recipe(name=name, path=path, description=description, source=source)


def _parse_url(data: dict[str, Any], path: Path) -> UrlRecipe:
    url = _req_str(data, "url", path)
    if not re.match(r"^(https?|file)://", url):
        raise ImageError(f"{path}: url must start with http://, https:// or file://, got {url!r}")
    if "sha256" not in data:
        raise ImageError(f"{path}: url needs a sha256 (the digest of the file at {url})")
    if isinstance(data["sha256"], int):
        raise ImageError(f"{path}: sha256 must be quoted (YAML read the digits as a number)")
    sha = _req_str(data, "sha256", path).lower()
    if not SHA256_RE.match(sha):
        raise ImageError(f"{path}: sha256 must be 64 hex digits, got {sha!r}")
    fmt = _req_str(data, "format", path)
    if fmt not in URL_FORMATS:
        raise ImageError(f"{path}: format must be one of {', '.join(URL_FORMATS)}, got {fmt!r}")
    fs_type = _opt_str(data, "fs_type", path)
    if fs_type is not None and fs_type not in FS_TYPES:
        raise ImageError(f"{path}: fs_type must be one of {', '.join(FS_TYPES)}, got {fs_type!r}")
    return UrlRecipe(url=url, sha256=sha, format=fmt, fs_type=fs_type)


def _parse_dib(data: dict[str, Any], path: Path) -> DibRecipe:
    elements = _str_list(data, "elements", path, ELEMENT_RE)
    if not elements:
        raise ImageError(f"{path}: elements must list at least one DIB element")
    release = _req_str(data, "release", path)
    packages = _str_list(data, "packages", path, PACKAGE_RE)
    architecture = _opt_str(data, "architecture", path) or "amd64"
    output = _opt_str(data, "output", path) or FS_IMAGE
    if output not in DIB_OUTPUTS:
        raise ImageError(f"{path}: output must be one of {', '.join(DIB_OUTPUTS)}, got {output!r}")
    fs_type = _opt_str(data, "fs_type", path)
    if output == FS_IMAGE:
        fs_type = fs_type or DEFAULT_FILESYSTEM
        if fs_type != "ext4":
            raise ImageError(f"{path}: fs_type: DIB builds here produce ext4 only, got {fs_type!r}")
    elif fs_type is not None:
        raise ImageError(f"{path}: fs_type only applies to output: fs-image")
    fs_features = _str_list(data, "fs_features", path, ELEMENT_RE)
    for feature in fs_features:
        if feature not in FS_FEATURES:
            raise ImageError(f"{path}: fs_features: {feature!r} is not one of "
                             f"{', '.join(FS_FEATURES)}")
    if fs_features and output != FS_IMAGE:
        raise ImageError(f"{path}: fs_features only applies to output: fs-image")
    env = data.get("environment") or {}
    if not isinstance(env, dict):
        raise ImageError(f"{path}: environment must be a mapping of DIB_* variables")
    environment: dict[str, str] = {}
    for key, value in env.items():
        if not isinstance(key, str) or not ENV_NAME_RE.match(key):
            raise ImageError(f"{path}: environment: {key!r} is not a variable name")
        if isinstance(value, bool) or not isinstance(value, (str, int)):
            raise ImageError(f"{path}: environment.{key} must be a string")
        environment[key] = str(value)
    return DibRecipe(elements=tuple(elements), release=release, packages=tuple(packages),
                     architecture=architecture, output=output, fs_type=fs_type,
                     fs_features=tuple(fs_features), environment=environment)


def _reject_unknown(data: dict[str, Any], allowed: set[str], path: Path) -> None:
    for key in data:
        if key not in allowed:
            raise ImageError(f"{path}: unknown key {key!r} (allowed: {', '.join(sorted(allowed))})")


def _req_str(data: dict[str, Any], key: str, path: Path) -> str:
    value = data.get(key)
    if not isinstance(value, str) or not value.strip():
        raise ImageError(f"{path}: {key} must be a non-empty string")
    return value.strip()


def _opt_str(data: dict[str, Any], key: str, path: Path) -> str | None:
    if data.get(key) is None:
        return None
    return _req_str(data, key, path)


def _str_list(data: dict[str, Any], key: str, path: Path, pattern: re.Pattern[str]) -> list[str]:
    value = data.get(key) or []
    if not isinstance(value, list):
        raise ImageError(f"{path}: {key} must be a list")
    for item in value:
        if not isinstance(item, str) or not pattern.match(item):
            raise ImageError(f"{path}: {key}: invalid entry {item!r}")
    return list(value)
