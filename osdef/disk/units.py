"""Size units shared by every layer, and the one parser of sizes such as 512M or 10G.

The lowest module of osdef: it imports nothing of osdef."""

import re

KiB = 1 << 10
MiB = 1 << 20
GiB = 1 << 30
TiB = 1 << 40
SECTOR = 512  # the unit block devices are addressed in (BLKZEROOUT, BLKDISCARD, partition tables)


_SIZE = re.compile(r"(\d{1,15})\s*([kmgt]?)(i?b)?\Z", re.IGNORECASE)
_SCALE = {"k": KiB, "m": MiB, "g": GiB, "t": TiB}


def parse_size(text: str, bare: int = 1) -> int | None:
    """Bytes in `text` (`512M`, `10G`, `2 GiB`, `4096`; K/M/G/T are powers of 1024), a bare
    number counted in `bare` bytes (Ganeti counts MiB); None when `text` is not a size."""
    m = _SIZE.match(text.strip())
    if not m:
        return None
    return int(m.group(1)) * (_SCALE[m.group(2).lower()] if m.group(2) else bare)
