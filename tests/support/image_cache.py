"""The shared test image cache: real DIB builds kept between runs on this machine.

Other tiers (create, boot) use it::

    from tests.support.image_cache import ensure_test_image, test_image_store
    art = ensure_test_image("debian-12")     # builds on a fresh machine (~2 min)
    store = test_image_store()               # ImageStore over the same cache

The cache dir is $OSDEF_TEST_IMAGE_CACHE (default /var/tmp/osdef-test-images,
the same as tests/conftest.py's site config).  An image is rebuilt when its
recipe (or a local element) changed since it was built.
"""

from __future__ import annotations

import sys

from osdef.config import ImageSettings
from osdef.images import Artifact, ImageStore
from tests.conftest import REPO, TEST_IMAGE_CACHE

RECIPES_DIR = REPO / "images"


def test_image_store() -> ImageStore:
    """ImageStore over the shared test cache and the repo's recipes."""
    return ImageStore(ImageSettings(cache_dir=TEST_IMAGE_CACHE), RECIPES_DIR, progress=sys.stderr)


test_image_store.__test__ = False  # a helper, not a test


def ensure_test_image(name: str = "debian-12") -> Artifact:
    """The cached build of name, (re)built under the lock if missing or out of date."""
    return test_image_store().refresh(name)
