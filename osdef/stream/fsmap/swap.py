"""Used-block map of a Linux swap area: its header page only.

What a swap area holds is meaningless once the guest is stopped; the first
4 KiB page (signature, UUID, label, bad-page list) is what ``swapon`` needs.
A swap area that holds a hibernation image (``S1SUSPEND`` and kin in place of
``SWAPSPACE2``) is not recognised here and is sent at block level.
"""

from __future__ import annotations

from osdef.stream.fsmap.base import FsMap, Reader

PAGE = 4096  # the header page: signature (osdef.disk.ondisk.signatures), UUID, label, bad pages


def used_map(reader: Reader) -> FsMap:
    return FsMap("swap", [(0, PAGE)], reader.length, "its header page")
