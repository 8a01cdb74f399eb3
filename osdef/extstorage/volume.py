"""The request Ganeti passes to an ExtStorage script, parsed from the environment.

Pure parsing: names are checked to be plain file names, sizes to be whole
MiB.  Ganeti sets VOL_NAME always, VOL_SIZE on create (and grow: the old
size), VOL_NEW_SIZE on grow, VOL_METADATA on setinfo, VOL_SNAPSHOT_NAME and
VOL_SNAPSHOT_SIZE on snapshot, VOL_OPEN_EXCLUSIVE on open, and EXTP_<PARAM>
for the disk's provider parameters (plus EXTP_ACCESS and EXTP_PROVIDER).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from collections.abc import Mapping
from typing import TypeVar

from osdef.extstorage.errors import RequestError

T = TypeVar("T")

_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+-]{0,200}\Z")
_TRUE = ("yes", "true", "on", "1")
_FALSE = ("no", "false", "off", "0", "")


@dataclass(frozen=True)
class Request:
    """What one ExtStorage call asks for."""

    name: str
    uuid: str | None = None
    size_mib: int | None = None
    new_size_mib: int | None = None
    metadata: str | None = None
    snapshot_name: str | None = None
    snapshot_size_mib: int | None = None
    open_exclusive: bool | None = None
    params: dict[str, str] = field(default_factory=dict)  # EXTP_* without the prefix, lower-case


def volume_name(value: str, variable: str = "VOL_NAME") -> str:
    """A volume name that is safe as a file name (no '/', no leading dot)."""
    if not _NAME_RE.match(value) or ".." in value:
        raise RequestError(f"{variable}={value!r} is not a valid volume name "
                           "(letters, digits and ._+- only, not starting with a dot)")
    return value


def mib(value: str, variable: str) -> int:
    """A size in MiB as Ganeti passes it (a whole, positive number)."""
    text = value.strip()
    if not text.isdigit() or int(text) <= 0:
        raise RequestError(f"{variable}={value!r} is not a size in MiB (a positive whole number)")
    return int(text)


def yes_no(value: str, variable: str) -> bool:
    text = value.strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise RequestError(f"{variable}={value!r}: use yes or no")


def parse(environ: Mapping[str, str]) -> Request:
    """The Request in an environment; missing VOL_NAME or malformed values raise RequestError."""
    raw_name = environ.get("VOL_NAME", "")
    if not raw_name:
        raise RequestError("VOL_NAME is not set: this script is meant to be run by Ganeti "
                           "(see docs/extstorage.md to run it by hand)")

    def opt_mib(var: str) -> int | None:
        return mib(environ[var], var) if environ.get(var, "").strip() else None

    snap = environ.get("VOL_SNAPSHOT_NAME", "").strip()
    excl = environ.get("VOL_OPEN_EXCLUSIVE")
    params = {k[len("EXTP_"):].lower(): v for k, v in environ.items() if k.startswith("EXTP_")}
    return Request(
        name=volume_name(raw_name),
        uuid=environ.get("VOL_UUID") or None,
        size_mib=opt_mib("VOL_SIZE"),
        new_size_mib=opt_mib("VOL_NEW_SIZE"),
        metadata=environ.get("VOL_METADATA"),
        snapshot_name=volume_name(snap, "VOL_SNAPSHOT_NAME") if snap else None,
        snapshot_size_mib=opt_mib("VOL_SNAPSHOT_SIZE"),
        open_exclusive=yes_no(excl, "VOL_OPEN_EXCLUSIVE") if excl is not None else None,
        params=params,
    )


def require(value: T | None, variable: str, action: str) -> T:
    """value, or a RequestError naming the variable the action needs."""
    if value is None:
        raise RequestError(f"{action} needs {variable}, which Ganeti did not set")
    return value
