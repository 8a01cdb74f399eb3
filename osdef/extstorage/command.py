"""`osdef install-extstorage`: argparse adapter over the providers' installers (no logic here)."""

from __future__ import annotations

import argparse
from pathlib import Path

from osdef.extstorage import install as installer
from osdef.extstorage import settings
from osdef.extstorage.rbd import config as rbdconfig


def register(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Add the `install-extstorage` command."""
    p = subparsers.add_parser(
        "install-extstorage", help="install an ExtStorage provider: loopfile (sparse files on loop devices) "
                                   "or rbd (Ceph RBD images, userspace access)",
        description="Write a Ganeti ExtStorage provider. loopfile: volumes are sparse files in DATA_DIR "
                    "attached as loop devices (gnt-instance add -t ext --disk 0:size=10G,provider=loopfile …). "
                    "rbd: volumes are RBD images in POOL, reached by qemu and osdef through librbd "
                    "(--disk 0:size=10G,provider=rbd,access=userspace …; kvm only).")
    p.add_argument("--provider", choices=("loopfile", "rbd"), default="loopfile",
                   help="which provider (default loopfile)")
    p.add_argument("--dir", help="provider dir to write (default /srv/ganeti/extstorage/PROVIDER); "
                                 "its name is the provider name Ganeti uses")
    p.add_argument("--data-dir", default=str(settings.DEFAULT_DATA_DIR),
                   help=f"loopfile: where the volumes' backing files live (default {settings.DEFAULT_DATA_DIR})")
    p.add_argument("--pool", default=rbdconfig.DEFAULT_POOL, help="rbd: the default pool (EXTP_POOL overrides)")
    p.add_argument("--user", help="rbd: the default cephx user, without client. (EXTP_USER overrides; "
                                  "default: librados', admin, and no :id= in the URI)")
    p.add_argument("--conf", default=rbdconfig.DEFAULT_CONF, help="rbd: the default ceph.conf (EXTP_CONF overrides)")
    p.add_argument("--connect-timeout", type=int, default=rbdconfig.DEFAULT_CONNECT_TIMEOUT,
                   help="rbd: seconds to wait for a monitor")
    p.set_defaults(func=run)
    return p


def run(args: argparse.Namespace, cfg_loader=None) -> int:
    if args.provider == "rbd":
        from osdef.extstorage.errors import ProviderConfigError
        from osdef.extstorage.rbd import install as rbdinstall

        if args.connect_timeout < 1:
            raise ProviderConfigError(f"--connect-timeout {args.connect_timeout}: use a whole number of seconds >= 1")
        defaults = rbdconfig.placement({k: v for k, v in (("pool", args.pool), ("user", args.user),
                                                          ("conf", args.conf)) if v},
                                       rbdconfig.Placement(connect_timeout=args.connect_timeout))
        report = rbdinstall.install(Path(args.dir or rbdinstall.DEFAULT_PROVIDER_DIR), defaults=defaults)
        print(f"installed the ExtStorage provider {report.provider_dir.name} (rbd) into {report.provider_dir}")
        print(f"  scripts: {', '.join(report.scripts)}")
        print(f"  volumes: RBD images in pool {defaults.pool} (cluster of {defaults.conf})")
        return 0
    report = installer.install(Path(args.dir or installer.DEFAULT_PROVIDER_DIR), data_dir=Path(args.data_dir))
    print(f"installed the ExtStorage provider {report.provider_dir.name} into {report.provider_dir}")
    print(f"  scripts: {', '.join(report.scripts)}")
    print(f"  volumes: sparse files in {report.data_dir}")
    return 0
