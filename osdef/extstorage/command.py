"""`osdef install-extstorage`: argparse adapter over osdef.extstorage.install (no logic here)."""

from __future__ import annotations

import argparse
from pathlib import Path

from osdef.disk.rbduri import DEFAULT_CONF
from osdef.extstorage import PROVIDER_NAME
from osdef.extstorage import install as installer
from osdef.extstorage.rbd import config as rbdconfig


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> argparse.ArgumentParser:
    """Add the `install-extstorage` command."""
    p = subparsers.add_parser(
        "install-extstorage", help="install an ExtStorage provider osdef ships: loopfile (sparse files on "
                                   "loop devices) or rbd (Ceph RBD images, userspace access)",
        description="Write a Ganeti ExtStorage provider osdef ships. loopfile: volumes are sparse files in "
                    "DATA_DIR attached as loop devices (gnt-instance add -t ext --disk 0:size=10G,provider=loopfile "
                    "…). rbd: volumes are RBD images in POOL, reached by qemu and osdef through librbd "
                    "(--disk 0:size=10G,provider=rbd,access=userspace …; kvm only).")
    p.add_argument("--provider", default=PROVIDER_NAME, choices=sorted(installer.PROVIDERS),
                   help=f"which provider (default {PROVIDER_NAME})")
    p.add_argument("--list", action="store_true", help="print the providers osdef ships, one a line")
    p.add_argument("--dir", help=f"provider dir to write (default {installer.EXTSTORAGE_DIR}/PROVIDER); "
                                 "its name is the provider name Ganeti uses")
    p.add_argument("--python", metavar="PATH", help="the interpreter the launchers run (default: this one)")
    p.add_argument("--data-dir", help="loopfile: where the volumes' backing files live (default "
                                      f"{installer.PROVIDERS[PROVIDER_NAME].default_data_dir})")
    p.add_argument("--no-data-dir", action="store_true",
                   help="loopfile: do not create the data dir now (a package build): the first volume creates it")
    p.add_argument("--pool", default=rbdconfig.DEFAULT_POOL, help="rbd: the default pool (EXTP_POOL overrides)")
    p.add_argument("--user", help="rbd: the default cephx user, without client. (EXTP_USER overrides; "
                                  "default: librados', admin, and no :id= in the URI)")
    p.add_argument("--conf", default=DEFAULT_CONF, help="rbd: the default ceph.conf (EXTP_CONF overrides)")
    p.add_argument("--connect-timeout", type=int, default=rbdconfig.DEFAULT_CONNECT_TIMEOUT,
                   help="rbd: seconds to wait for a monitor")
    p.set_defaults(func=run)
    return p


def _options(args: argparse.Namespace) -> installer.Options:
    from osdef.extstorage.errors import ProviderConfigError

    if args.connect_timeout < 1:
        raise ProviderConfigError(f"--connect-timeout {args.connect_timeout}: use a whole number of seconds >= 1")
    placement = rbdconfig.placement({k: v for k, v in (("pool", args.pool), ("user", args.user),
                                                       ("conf", args.conf)) if v},
                                    rbdconfig.Placement(connect_timeout=args.connect_timeout))
    return installer.Options(Path(args.data_dir) if args.data_dir else None, placement)


def run(args: argparse.Namespace, cfg_loader: object = None) -> int:  # cfg_loader: the CLI's, not needed
    if args.list:
        print("\n".join(installer.PROVIDERS))
        return 0
    target = Path(args.dir) if args.dir else installer.EXTSTORAGE_DIR / args.provider
    options = _options(args)
    report = installer.install(target, provider=args.provider, options=options, python=args.python,
                               create_data_dir=not args.no_data_dir)
    print(f"installed the ExtStorage provider {args.provider} into {report.provider_dir}")
    print(f"  scripts: {', '.join(report.scripts)}")
    if report.data_dir is not None:
        print(f"  volumes: sparse files in {report.data_dir}")
    else:
        print(f"  volumes: RBD images in pool {options.placement.pool} (cluster of {options.placement.conf})")
    return 0
