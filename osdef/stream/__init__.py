"""Export/import of instance disks as sparse, checksummed streams (pure block I/O, no libguestfs).

Modules, one concern each: ``partitions`` and ``fsmap`` (the guest's layout
and its filesystems' used blocks), ``content`` and ``extents`` (what is sent,
where the data is), ``format`` (the stream's bytes), ``sniff`` (what an import
input is), ``zstdframes`` (zstd framing check), ``blockio`` (the stream's fds; disks are osdef.disk's),
``export`` and ``restore`` (the two operations).
"""

from osdef.stream.export import export_disk
from osdef.stream.restore import ImportResult, import_disk

__all__ = ["ImportResult", "export_disk", "import_disk"]
