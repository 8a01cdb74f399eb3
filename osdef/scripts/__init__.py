"""Ganeti's OS scripts, the top of the tree: the entry point the launchers call
(entry), what each of the five scripts does (actions, above osdef.create.pipeline and
osdef.stream), the OS dir installer (osdir) and `osdef try` (trial).  The
Ganeti model they read (environment, parameters) is osdef.ganeti, below."""
