"""`osdef install-extstorage`: argparse adapter over osdef.extstorage.install (no logic here)."""

from __future__ import annotations

import argparse
from pathlib import Path

from osdef.extstorage import PROVIDER_NAME
from osdef.extstorage import install as installer


def register(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Add the `install-extstorage` command."""
    p = subparsers.add_parser(
        "install-extstorage", help="install an ExtStorage provider osdef ships (loopfile: sparse files "
                                   "on loop devices)",
        description="Write a Ganeti ExtStorage provider osdef ships. loopfile: volumes are sparse files "
                    "in DATA_DIR attached as loop devices. Use it with "
                    "gnt-instance add -t ext --disk 0:size=10G,provider=loopfile …")
    p.add_argument("--provider", default=PROVIDER_NAME, choices=sorted(installer.PROVIDERS),
                   help=f"which provider (default {PROVIDER_NAME})")
    p.add_argument("--list", action="store_true", help="print the providers osdef ships, one a line")
    p.add_argument("--dir", help=f"provider dir to write (default {installer.EXTSTORAGE_DIR}/PROVIDER); "
                                 "its name is the provider name Ganeti uses")
    p.add_argument("--data-dir", help="where the volumes' backing files live (loopfile default "
                                      f"{installer.PROVIDERS[PROVIDER_NAME].default_data_dir})")
    p.add_argument("--python", metavar="PATH", help="the interpreter the launchers run (default: this one)")
    p.add_argument("--no-data-dir", action="store_true",
                   help="do not create the data dir now (a package build): the first volume creates it")
    p.set_defaults(func=run)
    return p


def run(args: argparse.Namespace, cfg_loader=None) -> int:
    if args.list:
        print("\n".join(installer.PROVIDERS))
        return 0
    target = Path(args.dir) if args.dir else installer.EXTSTORAGE_DIR / args.provider
    report = installer.install(target, provider=args.provider,
                               data_dir=Path(args.data_dir) if args.data_dir else None,
                               python=args.python, create_data_dir=not args.no_data_dir)
    print(f"installed the ExtStorage provider {args.provider} into {report.provider_dir}")
    print(f"  scripts: {', '.join(report.scripts)}")
    print(f"  volumes: in {report.data_dir}")
    return 0
