"""The guest layer: one libguestfs appliance per run, disk layouts, customization, bootloader.

Entry points for the Ganeti scripts live in osdef.guest.install: `install_root`
(create) and `rename`; they are re-exported here lazily (osdef.customize
imports this package's session module, so an eager import would be circular).
"""

from typing import Any

__all__ = ["InstallReport", "install_root", "rename"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from osdef.guest import install

        return getattr(install, name)
    raise AttributeError(name)
