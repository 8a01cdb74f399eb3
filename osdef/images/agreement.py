"""The cluster's agreement on images: which stored sha256 every node must hold per image.

`osdef image sync NAME` writes it on the master once every node holds the
master's artifact, and distributes the same bytes to every node with
`gnt-cluster copyfile`.  It lives outside the OS dir and the image cache
(`images.agreement_file`, default /etc/osdef/images-agreed.json), so neither
`osdef install` nor wiping a cache removes it.  The create path calls
`check()` before its first write: a node whose image differs from the
agreement, or lacks it, refuses the instance and names the fixing command.
No agreement file, or no entry for the image, means nothing was agreed:
creates proceed as on a single node (see docs/decisions.md).

Parsing and rendering are pure; the file is written atomically.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from osdef.errors import ImageError
from osdef.images import cachefiles as cf
from osdef.images.recipe import check_name

AGREEMENT_VERSION = 1
_SHA256 = re.compile(r"[0-9a-f]{64}\Z")


@dataclass(frozen=True)
class Agreed:
    """The image every node must hold under `name`."""

    name: str
    sha256: str  # of the stored (zstd) artifact, as in the manifest
    artifact: str  # its file name in the cache
    agreed_at: str  # ISO 8601, UTC
    master: str  # the node the image was synced from


def parse(text: str, where: Path) -> dict[str, Agreed]:
    """The agreement file's entries; ImageError naming the file when it is not ours."""
    try:
        data: Any = json.loads(text)
    except ValueError:
        raise ImageError(f"{where}: not a valid image agreement (not JSON); "
                         "rewrite it with `osdef image sync NAME` on the master") from None
    if not isinstance(data, dict) or data.get("version") != AGREEMENT_VERSION \
            or not isinstance(data.get("images"), dict):
        raise ImageError(f"{where}: not a valid image agreement (version {AGREEMENT_VERSION} "
                         "expected); rewrite it with `osdef image sync NAME` on the master")
    out: dict[str, Agreed] = {}
    for name, entry in data["images"].items():
        try:
            check_name(name)
            if not isinstance(entry, dict):
                raise ValueError
            agreed = Agreed(name=name, **{k: entry[k] for k in
                                          ("sha256", "artifact", "agreed_at", "master")})
            if not all(isinstance(v, str) for v in (agreed.sha256, agreed.artifact,
                                                     agreed.agreed_at, agreed.master)) \
                    or not _SHA256.match(agreed.sha256):
                raise ValueError
        except (ImageError, KeyError, TypeError, ValueError):
            raise ImageError(f"{where}: bad entry for image {str(name)[:64]!r}; rewrite it "
                             "with `osdef image sync NAME` on the master") from None
        out[name] = agreed
    return out


def render(entries: dict[str, Agreed]) -> str:
    images = {n: {"sha256": a.sha256, "artifact": a.artifact, "agreed_at": a.agreed_at,
                  "master": a.master} for n, a in sorted(entries.items())}
    return json.dumps({"version": AGREEMENT_VERSION, "images": images}, indent=2,
                      sort_keys=True) + "\n"


def load(path: Path) -> dict[str, Agreed]:
    """Entries of the agreement file; {} when there is none."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        return {}
    except (OSError, UnicodeDecodeError) as exc:
        raise ImageError(f"{path}: cannot read the image agreement: "
                         f"{getattr(exc, 'strerror', None) or exc}") from None
    return parse(text, Path(path))


def save(path: Path, entries: dict[str, Agreed]) -> None:
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ImageError(f"cannot create {path.parent}: {exc.strerror}") from None
    cf.write_atomic(path, render(entries))


def fix_command(name: str) -> str:
    return f"osdef image sync {name}"


def check(entries: dict[str, Agreed], name: str, node_sha256: str | None, node: str) -> None:
    """Refuse (ImageError) when this node's image for name is not the agreed one.

    node_sha256 is the stored sha256 of the node's artifact, None when it has none.
    """
    agreed = entries.get(name)
    if agreed is None:
        return
    if node_sha256 is None:
        raise ImageError(
            f"node {node} lacks image {name} (cluster agreed sha256 {agreed.sha256}, node has "
            f"none): on the master run `{fix_command(name)}` before creating instances here")
    if node_sha256 != agreed.sha256:
        raise ImageError(
            f"node {node}: image {name} differs from the cluster's (node sha256 {node_sha256}, "
            f"cluster agreed sha256 {agreed.sha256}): on the master run `{fix_command(name)}`")
