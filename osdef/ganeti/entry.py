"""Compatibility: OS dirs installed before osdef.scripts existed have launchers that import
``osdef.ganeti.entry.launcher_main``; re-running ``osdef install`` writes ones that import
osdef.scripts.entry.  Remove once every node's OS dir has been reinstalled."""
from osdef.scripts.entry import launcher_main, main  # noqa: F401
