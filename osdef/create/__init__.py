"""Create and rename: what Ganeti asked, decided once, then laid down and customized.

Read in the order the data flows:

- ``request``: the typed Request of one script run (instance, variant, OS
  parameters, disks, site config), loaded and checked once;
- ``plan``: the frozen CreatePlan built from it (network model, steps, boot
  settings, boot area), with nothing written yet;
- ``target``, ``partitioning``, ``layout/``: the disk's size, the partition
  plan, and the three ways a root is laid down (filesystem image, disk image,
  tarball), each ending in one frozen MountedRoot;
- ``bootarea``: the cached BIOS boot area, a value in the plan;
- ``steps``, ``steporder``, ``runner``, ``context``: the customization steps
  (hooks/) loaded, ordered, and run with a StepContext;
- ``undoable``: host steps with their undo (rollback newest first);
- ``pipeline``: the one pipeline, ``create`` and ``rename``.

The guest's operations (the libguestfs session, the file editors) are
osdef.guest, one floor below; the host-side disk I/O is osdef.disk.
"""
