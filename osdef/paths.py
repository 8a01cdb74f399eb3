"""Where osdef's own data lives: variants/, hooks/ and images/ (recipes and elements).

From a source checkout (``pip install -e .``, ``make venv``) they are the
checkout's directories; from the Debian package they are under
/usr/share/osdef (installed by debian/, see docs/debian.md).
"""

from __future__ import annotations

from pathlib import Path

from osdef.errors import OsdefError

INSTALLED_DATA = Path("/usr/share/osdef")  # the Debian package's data dir
_CHECKOUT = Path(__file__).resolve().parents[1]


def data_dir(name: str) -> Path:
    """variants, hooks or images: the checkout's when osdef runs from one, else the package's."""
    own = _CHECKOUT / name
    return own if own.is_dir() else INSTALLED_DATA / name


def data_root() -> Path:
    """The directory holding variants/, hooks/ and images/ (a checkout or /usr/share/osdef)."""
    for root in (_CHECKOUT, INSTALLED_DATA):
        if (root / "variants").is_dir():
            return root
    raise OsdefError(
        f"no variants/ directory in {_CHECKOUT} or {INSTALLED_DATA}: osdef runs from its source "
        "checkout (make venv) or from the Debian package (apt install ./osdef_*.deb), see README.md"
    )


OS_NAME = "image"  # the OS definition's name: gnt-instance add -o image+VARIANT
#: where Debian's Ganeti looks for OS definitions, in order; the first hit wins
GANETI_OS_SEARCH_PATH = (Path("/srv/ganeti/os"), Path("/usr/local/lib/ganeti/os"),
                         Path("/usr/lib/ganeti/os"), Path("/usr/share/ganeti/os"))
GIT_OS_DIR = GANETI_OS_SEARCH_PATH[0] / OS_NAME  # where `osdef install` writes by default
PACKAGE_OS_DIR = GANETI_OS_SEARCH_PATH[-1] / OS_NAME  # the Debian package's


def active_os_dir() -> Path:
    """The OS dir Ganeti runs on this node: the first `image` dir on its search path
    (the git route's /srv/ganeti/os/image shadows the package's); /srv/ganeti/os/image if none."""
    return next((d / OS_NAME for d in GANETI_OS_SEARCH_PATH if (d / OS_NAME).is_dir()), GIT_OS_DIR)
