"""`osdef install-extstorage`: argparse adapter over osdef.extstorage.install (no logic here)."""

from __future__ import annotations

import argparse
from pathlib import Path

from osdef.extstorage import install as installer
from osdef.extstorage import settings


def register(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Add the `install-extstorage` command."""
    p = subparsers.add_parser(
        "install-extstorage", help="install the `loopfile` ExtStorage provider (sparse files on loop devices)",
        description="Write the Ganeti ExtStorage provider `loopfile`: volumes are sparse files in "
                    "DATA_DIR attached as loop devices. Use it with "
                    "gnt-instance add -t ext --disk 0:size=10G,provider=loopfile …")
    p.add_argument("--dir", default=str(installer.DEFAULT_PROVIDER_DIR),
                   help=f"provider dir to write (default {installer.DEFAULT_PROVIDER_DIR}); "
                        "its name is the provider name Ganeti uses")
    p.add_argument("--data-dir", default=str(settings.DEFAULT_DATA_DIR),
                   help=f"where the volumes' backing files live (default {settings.DEFAULT_DATA_DIR})")
    p.set_defaults(func=run)
    return p


def run(args: argparse.Namespace, cfg_loader=None) -> int:
    report = installer.install(Path(args.dir), data_dir=Path(args.data_dir))
    print(f"installed the ExtStorage provider {report.provider_dir.name} into {report.provider_dir}")
    print(f"  scripts: {', '.join(report.scripts)}")
    print(f"  volumes: sparse files in {report.data_dir}")
    return 0
