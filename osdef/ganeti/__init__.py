"""The Ganeti model: the OS-script environment (environment) and the OS parameters (params).
Low in the tree; the scripts that act on it are osdef.scripts."""
