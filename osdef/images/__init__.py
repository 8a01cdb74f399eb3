"""Images: recipes (images/*.yaml) → built or fetched artifacts in a cache.

`ImageStore` builds with diskimage-builder or downloads (url + sha256),
stores each artifact zstd-compressed with a manifest, under a per-image lock;
`Artifact.open()` streams the decompressed image for the create step.
"""

from osdef.images.artifact import Artifact, open_image
from osdef.images.manifest import Manifest
from osdef.images.recipe import Recipe
from osdef.images.store import ImageInfo, ImageStore
from osdef.vocab import DISK_RAW, FS_IMAGE, TAR

__all__ = [
           "DISK_RAW",
           "FS_IMAGE",
           "TAR",
           "Artifact",
           "ImageInfo",
           "ImageStore",
           "Manifest",
           "Recipe",
           "open_image",
]
