"""Three ways to lay the root filesystem onto DISK_0, each host steps and then appliance steps.

- ``fsimage.FilesystemImageLayout``: a bare ext2/3/4 image (DIB ``-t raw`` without ``vm``).
  Host: partition table + zero-skipping copy into the root partition.  Appliance: e2fsck
  (unless the image was checked after it was built: osdef.disk.ondisk.ext), fresh UUID,
  resize2fs, mount.  The default, fast path.
- ``diskimage.DiskImageLayout``: a raw partitioned disk image.  Host: zero-skipping copy onto
  the disk.  Appliance: GPT backup header moved, last partition and its filesystem (ext*, xfs,
  btrfs) grown, mount by inspection.
- ``tarball.TarballLayout``: a root tarball.  Host: partition table.  Appliance: mkfs, mount,
  tar_in through a named pipe (streamed, no temp file), ./dev/* emptied.

The shared base (``MountedRoot``, ``Layout``, the size check) is ``base``;
osdef.create.pipeline picks the layout for the image's kind.  ``check(disk_size)``
runs before any byte is written.  ``host_steps()`` are undoable steps (the first
wipes the disk's first and last MiB, and its undo does it again, so a create
that fails later leaves no valid-looking table).  ``lay_down(session, runner)``
runs the appliance steps through the runner, each handing its result to the
next, and returns the one frozen ``MountedRoot`` the customization steps get.
"""
