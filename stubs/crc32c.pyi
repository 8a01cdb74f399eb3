# python3-crc32c (Debian) ships a C extension without type information; what osdef uses of it.
from _typeshed import ReadableBuffer

def crc32c(data: ReadableBuffer, value: int = 0, /) -> int: ...
