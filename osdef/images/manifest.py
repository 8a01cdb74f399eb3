"""The manifest stored next to each cached artifact (<cache>/<name>.json).

The manifest is the commit point of a build: it is written last, atomically,
and names the artifact file it describes together with that file's size and
sha256.  An artifact without a manifest, or one that does not match its
manifest, is not a valid image.  Parsing and rendering are pure.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from typing import Any

from osdef.images.formats import STORED_FORMATS
from osdef.vocab import ROOT_FILESYSTEMS

MANIFEST_VERSION = 1


class ManifestError(ValueError):
    """The manifest JSON is unreadable or incomplete."""


@dataclass(frozen=True)
class Manifest:
    """What the cache knows about one stored artifact."""

    name: str
    artifact: str  # file name inside the cache dir
    format: str  # fs-image | disk-raw | tar
    fs_type: str | None
    compression: str  # always "zstd" for now
    sha256: str  # of the stored (compressed) artifact file
    stored_size: int  # bytes of the stored artifact file
    size: int  # apparent size of the uncompressed image
    used_size: int  # bytes in non-zero 4 KiB blocks of the uncompressed image
    source: str  # dib | url | add
    created_at: str  # ISO 8601, UTC
    recipe_digest: str | None = None
    dib_version: str | None = None
    bootstrap: str | None = None  # debootstrap | mmdebstrap: what made a DIB build's root
    origin: str | None = None  # URL or file the image came from
    origin_sha256: str | None = None  # sha256 of the downloaded/added file
    version: int = MANIFEST_VERSION

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2, sort_keys=True) + "\n"


_REQUIRED: dict[str, type | tuple[type, ...]] = {
    "name": str, "artifact": str, "format": str, "fs_type": (str, type(None)),
    "compression": str, "sha256": str, "stored_size": int, "size": int,
    "used_size": int, "source": str, "created_at": str,
}
_OPTIONAL = {"recipe_digest", "dib_version", "bootstrap", "origin", "origin_sha256", "version"}


def parse_manifest(text: str) -> Manifest:
    """Read a manifest; ManifestError when it is not one we wrote."""
    try:
        data: Any = json.loads(text)
    except ValueError as exc:
        raise ManifestError(f"not JSON: {exc}") from None
    if not isinstance(data, dict):
        raise ManifestError("not a JSON object")
    for key, kind in _REQUIRED.items():
        if key not in data:
            raise ManifestError(f"missing key {key!r}")
        if not isinstance(data[key], kind) or isinstance(data[key], bool):
            raise ManifestError(f"key {key!r} has the wrong type")
    if data.get("version", MANIFEST_VERSION) != MANIFEST_VERSION:
        raise ManifestError(f"unsupported manifest version {data.get('version')!r}")
    if data["format"] not in STORED_FORMATS:
        raise ManifestError(f"unknown format {data['format']!r}")
    if data["fs_type"] is not None and data["fs_type"] not in ROOT_FILESYSTEMS:
        raise ManifestError(f"unknown filesystem type {data['fs_type']!r}")
    if data["compression"] != "zstd":
        raise ManifestError(f"unknown compression {data['compression']!r}")
    if "/" in data["artifact"] or data["artifact"].startswith("."):
        raise ManifestError(f"bad artifact file name {data['artifact']!r}")
    known = set(_REQUIRED) | _OPTIONAL
    return Manifest(**{k: v for k, v in data.items() if k in known})
