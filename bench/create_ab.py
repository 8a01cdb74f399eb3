#!/usr/bin/env python3
"""Create before and after a change of the create side, interleaved in one run (same machine, same load).

Each tree (a checkout: ``--before DIR``, ``--after DIR``) runs its own create code in a child
process (``PYTHONPATH=DIR``, this checkout's venv), one create per child: the debian-12 image
(DIB ext4 filesystem image, BIOS, GPT, serial console) onto a fresh 10 GiB sparse file, with the
tree's own boot-area cache filled by one untimed create first (as every later create of an
image on a node runs).  Pairs alternate which tree goes first.  Reported per tree, median over
the pairs: total, appliance launch (with the host copy that overlaps it) and the work (total
minus launch and the host steps before it): the part a refactoring of the create side could
change.

The child finds whichever API its tree has: ``osdef.create.pipeline`` (the create/ package) or
``osdef.guest.install`` (before it).

Usage (root): .venv/bin/python bench/create_ab.py --before /var/tmp/tree-old --after . [--pairs 5]
              [--workdir /var/tmp/osdef-create-ab] [--no-doc]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

GiB = 1 << 30
HOSTNAME = "bench.example.org"
HOST_STEPS = ("wipe the start and end of the disk", "write the partition table",
              "copy the filesystem image into the root partition")
SECTION = "## Create before/after the create/ package (issue 23)"
METRICS = ("total", "launch", "work")


def child(args: argparse.Namespace) -> int:
    """One create with this process's osdef (PYTHONPATH); its timings as one JSON line."""
    from osdef.config import ImageSettings, LibguestfsSettings
    from osdef.images import ImageStore
    try:
        from osdef.create.bootarea import BootAreaCache
        from osdef.create.pipeline import ImageData, install_root
        from osdef.create.plan import CreatePlan
        new_api = True
    except ImportError:
        from osdef.guest.bootarea import BootAreaCache  # type: ignore[no-redef]
        from osdef.guest.install import ImageData, install_root  # type: ignore[no-redef]
        from osdef.guest.plan import CreatePlan  # type: ignore[no-redef]
        new_api = False
    import osdef

    store = ImageStore(ImageSettings(cache_dir=args.cache), Path(osdef.__file__).parents[1] / "images", progress=None)
    art = store.artifact(args.image)
    settings = LibguestfsSettings(backend_settings=tuple(args.backend_setting))
    cache = BootAreaCache(Path(args.bootareas), art.sha256, lambda _m: None)
    disk = Path(args.disk)
    disk.unlink(missing_ok=True)
    with open(disk, "wb") as f:
        f.truncate(10 * GiB)
    with art.open() as stream:
        started = time.monotonic()
        fields = dict(layout="fs-image", hostname=HOSTNAME, fs_type="ext4", table="gpt", boot="bios",
                      serial_console=True)
        if new_api:
            plan = CreatePlan(**fields).with_boot_cache(cache)
            report = install_root(disk, ImageData(stream, art.size), plan, settings, lambda _m: None,
                                  boot_cache=cache)
        else:
            plan = CreatePlan(**fields, boot_cache=cache)
            report = install_root(disk, ImageData(stream, art.size), plan, settings, lambda _m: None)
        total = time.monotonic() - started
    disk.unlink()
    t = report.timings
    launch = t.get("launch + host copy", t.get("launch the appliance", 0.0))
    work = total - launch - sum(t.get(k, 0.0) for k in HOST_STEPS[:2])
    print(json.dumps({"total": total, "launch": launch, "work": work, "osdef": osdef.__file__}))
    return 0


def one(tree: Path, work: Path, label: str, args: argparse.Namespace) -> dict[str, float]:
    argv = [sys.executable, __file__, "--child", "--cache", str(args.cache), "--image", args.image,
            "--disk", str(work / f"{label}.img"), "--bootareas", str(work / f"{label}-bootareas")]
    for setting in args.backend_setting:
        argv += ["--backend-setting", setting]
    env = dict(os.environ, PYTHONPATH=str(tree))
    proc = subprocess.run(argv, env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"{label} create failed: {(proc.stderr or proc.stdout)[-1500:]}")
    row = json.loads(proc.stdout.strip().splitlines()[-1])
    if not row.pop("osdef").startswith(str(tree.resolve())):
        raise SystemExit(f"{label}: the child imported osdef from outside {tree}")
    return row


def _commit(tree: str) -> str:
    """The tree's commit, for the table (a worktree's path says nothing a month later)."""
    proc = subprocess.run(["git", "-C", str(tree), "rev-parse", "--short", "HEAD"], capture_output=True, text=True)
    return proc.stdout.strip() or str(tree)


def table(rows: dict[str, list[dict[str, float]]], before: str, after: str) -> str:
    med = {label: {m: statistics.median(r[m] for r in runs) for m in METRICS} for label, runs in rows.items()}
    lines = ["| median of the pairs (s) | " + " | ".join(METRICS) + " |", "|---|" + "---:|" * len(METRICS)]
    for label, tree in (("before", before), ("after", after)):
        lines.append(f"| {label} ({_commit(tree)}) | " + " | ".join(f"{med[label][m]:.1f}" for m in METRICS) + " |")
    lines.append("| after − before | " + " | ".join(f"{med['after'][m] - med['before'][m]:+.1f}" for m in METRICS)
                 + " |")
    spread = {label: f"{min(r['work'] for r in runs):.1f}–{max(r['work'] for r in runs):.1f}"
              for label, runs in rows.items()}
    return "\n".join(lines) + f"\n\nwork, min–max over the pairs: before {spread['before']} s, after {spread['after']} s.\n"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--disk", help=argparse.SUPPRESS)
    ap.add_argument("--bootareas", help=argparse.SUPPRESS)
    ap.add_argument("--before", type=Path)
    ap.add_argument("--after", type=Path)
    ap.add_argument("--image", default="debian-12")
    ap.add_argument("--cache", type=Path, default=Path(os.environ.get("OSDEF_TEST_IMAGE_CACHE", "/var/tmp/osdef-test-images")))
    ap.add_argument("--backend-setting", action="append", default=[],
                    help="libguestfs backend setting, as the site config's (e.g. force_tcg where KVM is missing)")
    ap.add_argument("--workdir", type=Path, default=Path("/var/tmp/osdef-create-ab"))
    ap.add_argument("--pairs", type=int, default=5)
    ap.add_argument("--no-doc", action="store_true", help="do not write the section of docs/benchmarks.md")
    args = ap.parse_args()
    if args.child:
        return child(args)
    if args.before is None or args.after is None:
        ap.error("--before and --after are required")
    args.workdir.mkdir(parents=True, exist_ok=True)
    trees = {"before": args.before.resolve(), "after": args.after.resolve()}
    for label, tree in trees.items():  # fill each tree's boot-area cache: grub-install once, untimed
        one(tree, args.workdir, label, args)
    rows: dict[str, list[dict[str, float]]] = {"before": [], "after": []}
    for i in range(args.pairs):
        order = ("before", "after") if i % 2 == 0 else ("after", "before")
        for label in order:
            rows[label].append(one(trees[label], args.workdir, label, args))
            print(f"pair {i + 1} {label}: " + ", ".join(f"{m} {rows[label][-1][m]:.1f} s" for m in METRICS),
                  flush=True)
    text = table(rows, str(args.before), str(args.after))
    print(text)
    if not args.no_doc:
        sys.path.insert(0, str(Path(__file__).resolve().parent))
        from benchlib import write_section

        write_section(SECTION, f"{SECTION}\n\n`bench/create_ab.py --pairs {args.pairs}` "
                               f"({time.strftime('%Y-%m-%d')}): one create of the debian-12 image (ext4, BIOS, "
                               "GPT, serial console) onto a fresh 10 GiB sparse file with a warm boot-area cache, "
                               "each tree's own code in its own process, pairs alternating which goes first. "
                               "*work* is the create minus the appliance launch and the host steps before it: "
                               "what the create side's code does.\n\n" + text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
