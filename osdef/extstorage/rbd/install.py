"""Write (and check) the `rbd` provider dir, /srv/ganeti/extstorage/rbd by default.

The same files as loopfile's (osdef.extstorage.install.write_provider): one
launcher per script bound to osdef's interpreter, ``parameters.list`` and
``extstorage.yaml`` holding the provider's default pool, user, ceph.conf and
connect timeout.  Nothing is created in Ceph: the pool must exist
(``ceph osd pool create NAME; rbd pool init NAME``).
"""

from __future__ import annotations

from pathlib import Path

from osdef.extstorage import install as base
from osdef.extstorage.rbd import PROVIDER_NAME, config
from osdef.extstorage.rbd.actions import ACTIONS

DEFAULT_PROVIDER_DIR = Path("/srv/ganeti/extstorage") / PROVIDER_NAME
SCRIPTS = tuple(ACTIONS)
ENTRY_MODULE = "osdef.extstorage.rbd.entry"


def install(provider_dir: Path = DEFAULT_PROVIDER_DIR, *, defaults: config.Placement = config.Placement(),
            python: str | None = None) -> base.InstallReport:
    """Write the provider dir with these defaults (extstorage.yaml)."""
    provider_dir = Path(provider_dir).absolute()
    base.write_provider(provider_dir, provider=PROVIDER_NAME, scripts=SCRIPTS, module=ENTRY_MODULE,
                        parameters=config.parameters_list(), config_text=config.render(defaults), python=python)
    return base.InstallReport(provider_dir, None, SCRIPTS)


def diagnose(provider_dir: Path) -> list[str]:
    """Problems in an installed `rbd` provider dir; [] when healthy."""
    return base.diagnose(provider_dir, scripts=SCRIPTS, parameters=config.parameters_list(), load=config.defaults)
