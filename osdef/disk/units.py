"""Size units shared by every layer (the lowest module of osdef: it imports nothing)."""

MiB = 1 << 20
SECTOR = 512  # the unit block devices are addressed in (BLKZEROOUT, BLKDISCARD, partition tables)
