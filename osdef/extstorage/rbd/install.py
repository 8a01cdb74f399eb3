"""Write (and check) the `rbd` provider dir, /srv/ganeti/extstorage/rbd by default.

The same files as loopfile's (osdef.extstorage.install, which lists both
providers): one launcher per script bound to osdef's interpreter,
``parameters.list`` and ``extstorage.yaml`` holding the provider's default
pool, user, ceph.conf and connect timeout.  Nothing is created in Ceph: the
pool must exist (``ceph osd pool create NAME; rbd pool init NAME``).
"""

from __future__ import annotations

from pathlib import Path

from osdef.extstorage import install as base
from osdef.extstorage.rbd import PROVIDER_NAME, config

DEFAULT_PROVIDER_DIR = base.EXTSTORAGE_DIR / PROVIDER_NAME
SCRIPTS = base.PROVIDERS[PROVIDER_NAME].scripts


def install(provider_dir: Path = DEFAULT_PROVIDER_DIR, *, defaults: config.Placement = config.Placement(),
            python: str | None = None) -> base.InstallReport:
    """Write the provider dir with these defaults (extstorage.yaml)."""
    return base.install(provider_dir, provider=PROVIDER_NAME, options=base.Options(placement=defaults),
                        python=python)


def diagnose(provider_dir: Path) -> list[str]:
    """Problems in an installed `rbd` provider dir; [] when healthy."""
    return base.diagnose(provider_dir, provider=PROVIDER_NAME)
