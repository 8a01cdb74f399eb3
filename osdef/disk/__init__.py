"""The host side of a disk: one layer for create's layout and for export/import.

A "disk" is a regular file or a block device (a loop device, LVM, DRBD), as
Ganeti hands it to the OS scripts.  Modules, each one concern, bottom up:
``units`` (MiB), ``loop`` (a loop device and its backing file), ``device``
(open with the type check, size, positional reads and writes, flushes),
``zeroing`` (make a range read as zeros cheaply: punched holes in files,
discards on loop devices so their volumes stay sparse, BLKZEROOUT elsewhere;
the head-and-tail wipe of a failed write), ``pipes`` (pipe buffer sizing) and
``copy`` (the one sparse copy engine: data written, gaps zeroed cheaply), and
``ondisk``: the one reader of the formats a guest leaves on a disk (partition tables as
Linux reads them, ext superblocks and descriptors, FAT boot sectors, filesystem
signatures), which the stream's maps, image detection and create's layout share.

Errors are raised in the caller's terms: an open disk carries the typed error
class its user reports (osdef.errors: GuestError for create, the stream's
BlockIOError for export/import), so an admin reads one line either way.
Nothing here knows about streams, images or libguestfs.
"""
