"""`osdef image build|list|add|sync`: argparse adapter over ImageStore and ClusterSync.

`sync` and `list --cluster` run on the Ganeti master; `node-receive` and
`node-report` are the per-node halves they start with `gnt-cluster command`.
These four load the site config the way create does: $OSDEF_CONFIG, else
<OS dir>/osdef.yaml, else /etc/osdef/osdef.yaml (--os-dir, default
/srv/ganeti/os/image).

`register(subparsers)` adds the `image` command; each handler (set as both
`func` and `handler`) takes (args, config) — config being a SiteConfig or a
zero-argument loader returning one — and returns an exit code.  ImageError
propagates to the CLI edge (osdef.cli), which prints its one line.
"""

from __future__ import annotations

import argparse
import sys
from datetime import datetime, UTC
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from osdef import config as siteconfig
from osdef.config import SiteConfig
from osdef.images.store import ImageInfo, ImageStore
from osdef.paths import active_os_dir, data_dir

if TYPE_CHECKING:  # imported late by the commands that need it
    from osdef.images.sync import ClusterSync

DEFAULT_OS_DIR = active_os_dir()  # the OS dir Ganeti uses here (osdef.paths)


def default_recipes_dir() -> Path:
    """images/ of the checkout osdef runs from, or of the Debian package."""
    return data_dir("images")


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> argparse.ArgumentParser:
    """Add `image` with its build/list/add subcommands; handlers are set as `handler`."""
    image = subparsers.add_parser("image", help="build, list and add guest images")
    image.add_argument("--recipes", type=Path, default=None, metavar="DIR",
                       help="directory of image recipes (default: the images/ dir of osdef)")
    sub = image.add_subparsers(dest="image_command", metavar="COMMAND", required=True)

    build = sub.add_parser("build", help="build (diskimage-builder) or download an image now")
    build.add_argument("name", metavar="NAME")
    build.add_argument("-v", "--verbose", action="store_true",
                       help="show diskimage-builder's output (always in <cache>/NAME.build.log)")
    build.set_defaults(func=cmd_build, handler=cmd_build)

    lst = sub.add_parser("list", help="list recipes and cached images")
    lst.add_argument("--cluster", action="store_true",
                     help="on the Ganeti master: which node holds which image digest")
    _cluster_args(lst)
    lst.set_defaults(func=cmd_list, handler=cmd_list)

    sync = sub.add_parser("sync", help="on the Ganeti master: copy this node's image NAME to "
                                       "every node, verify it there and record it as agreed")
    sync.add_argument("name", metavar="NAME")
    _cluster_args(sync)
    sync.set_defaults(func=cmd_sync, handler=cmd_sync)

    recv = sub.add_parser("node-receive", help=argparse.SUPPRESS)  # run by sync on each node
    recv.add_argument("name", metavar="NAME")
    recv.add_argument("--staged", type=Path, required=True)
    recv.add_argument("--staged-manifest", type=Path, required=True)
    recv.add_argument("--sha256", required=True)
    recv.add_argument("--staged-agreement", type=Path, default=None)
    recv.add_argument("--agreement-sha256", default=None)
    recv.add_argument("--os-dir", type=Path, default=DEFAULT_OS_DIR)
    recv.set_defaults(func=cmd_node_receive, handler=cmd_node_receive)

    rep = sub.add_parser("node-report", help=argparse.SUPPRESS)  # run by list --cluster
    rep.add_argument("names", metavar="NAME", nargs="*")
    rep.add_argument("--probe", type=Path, action="append", default=[])
    rep.add_argument("--os-dir", type=Path, default=DEFAULT_OS_DIR)
    rep.set_defaults(func=cmd_node_report, handler=cmd_node_report)

    add = sub.add_parser("add", help="register an existing raw/qcow2/tar image file "
                                     "(optionally zstd-compressed)")
    add.add_argument("name", metavar="NAME")
    add.add_argument("file", metavar="FILE", type=Path)
    add.set_defaults(func=cmd_add, handler=cmd_add)
    return image


def _cluster_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("-g", "--node-group", metavar="GROUP", default=None,
                   help="only the nodes of this node group")
    p.add_argument("--os-dir", type=Path, default=DEFAULT_OS_DIR,
                   help=f"the installed OS dir, for its osdef.yaml (default {DEFAULT_OS_DIR})")


Config = SiteConfig | Callable[[], SiteConfig]


def _node_site(args: argparse.Namespace, config: Config) -> SiteConfig:
    """The config create would use on this node (tests pass a SiteConfig)."""
    return config if isinstance(config, SiteConfig) else siteconfig.load(args.os_dir)


def _cluster_sync(args: argparse.Namespace, config: Config) -> ClusterSync:
    from osdef.images.sync import ClusterSync

    return ClusterSync(_node_site(args, config).images, args.os_dir, progress=sys.stderr)


def cmd_sync(args: argparse.Namespace, config: Config) -> int:
    from osdef.images.sync import format_states

    states = _cluster_sync(args, config).sync(args.name, group=args.node_group)
    print(format_states(states))
    bad = [s.node for s in states if not s.ok]
    if bad:
        print(f"osdef image sync: {len(bad)} node(s) do not hold the agreed image {args.name}: "
              f"{', '.join(bad)}", file=sys.stderr)
        return 1
    return 0


def cmd_node_receive(args: argparse.Namespace, config: Config) -> int:
    from osdef.images.cluster import emit
    from osdef.images.sync import receive

    result = receive(_node_site(args, config).images, args.name, args.staged,
                     args.staged_manifest, args.sha256, args.staged_agreement,
                     args.agreement_sha256)
    print(emit(result))
    return 0 if result["ok"] else 1


def cmd_node_report(args: argparse.Namespace, config: Config) -> int:
    from osdef.images.cluster import emit
    from osdef.images.sync import report

    print(emit(report(_node_site(args, config).images, args.names or None, args.probe)))
    return 0


def _store(args: argparse.Namespace, config: Config, echo: bool = False) -> ImageStore:
    site = config if isinstance(config, SiteConfig) else config()
    recipes = args.recipes if getattr(args, "recipes", None) else default_recipes_dir()
    return ImageStore(site.images, recipes, progress=sys.stderr, echo_build=echo)


def cmd_build(args: argparse.Namespace, config: Config) -> int:
    art = _store(args, config, echo=args.verbose).build(args.name)
    print(f"{art.name}: {art.path}")
    return 0


def cmd_add(args: argparse.Namespace, config: Config) -> int:
    art = _store(args, config).add(args.name, args.file)
    print(f"{art.name}: {art.path}")
    return 0


def cmd_list(args: argparse.Namespace, config: Config) -> int:
    if getattr(args, "cluster", False):
        from osdef.images.sync import format_states

        states = _cluster_sync(args, config).states(None, group=args.node_group)
        print(format_states(states))
        return 0 if all(s.ok for s in states) else 1
    print(format_table(_store(args, config).list()))
    return 0


def format_table(infos: list[ImageInfo], now: datetime | None = None) -> str:
    """The `image list` table (pure)."""
    now = now or datetime.now(UTC)
    rows = [("NAME", "SOURCE", "FORMAT", "SIZE", "USED", "STORED", "AGE", "RECIPE")]
    for i in infos:
        if not i.built:
            rows.append((i.name, i.source, "-", "-", "-", "-", "-", "not built"))
            continue
        fmt = f"{i.format}/{i.fs_type}" if i.fs_type else (i.format or "-")
        recipe = {None: "-", True: "changed", False: "current"}[i.recipe_changed]
        rows.append((i.name, i.source, fmt, human_size(i.size), human_size(i.used_size),
                     human_size(i.stored_size), human_age(i.age_seconds(now)), recipe))
    widths = [max(len(r[c]) for r in rows) for c in range(len(rows[0]))]
    return "\n".join("  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)).rstrip() for r in rows)


def human_size(n: int | None) -> str:
    if n is None:
        return "-"
    size = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{size:.0f}{unit}" if unit == "B" else f"{size:.1f}{unit}"
        size /= 1024
    return f"{size:.1f}TiB"


def human_age(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    for unit, span in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= span:
            return f"{seconds / span:.0f}{unit}"
    return f"{seconds:.0f}s"
