"""The provider's ExtStorage parameters (``--disk N:provider=loopfile,NAME=VALUE``), declared once.

From this table come ``parameters.list`` and the checks of ``verify``.
"""

from __future__ import annotations

from dataclasses import dataclass
from collections.abc import Mapping

from osdef.extstorage.errors import RequestError
from osdef.extstorage.volume import yes_no

# always passed by Ganeti, never declared in parameters.list
GANETI_PARAMS = ("access", "provider")


@dataclass(frozen=True)
class ExtParam:
    name: str
    default: str
    description: str


PARAMETERS: tuple[ExtParam, ...] = (
    ExtParam("preallocate", "no",
             "yes: allocate the whole backing file at create; no (default): sparse (thin) file"),
)


def parameters_list() -> str:
    """parameters.list: `name description` per line, nothing else (Ganeti parses it as is)."""
    return "".join(f"{p.name} {p.description}\n" for p in PARAMETERS)


def preallocate(params: Mapping[str, str]) -> bool:
    return yes_no(params.get("preallocate", "no"), "EXTP_PREALLOCATE")


def check(params: Mapping[str, str]) -> None:
    """Reject unknown or malformed provider parameters (EXTP_* without the prefix)."""
    known = {p.name for p in PARAMETERS}
    for name in sorted(params):
        if name not in known and name not in GANETI_PARAMS:
            raise RequestError(f"unknown parameter {name} for the loopfile provider "
                               f"(known: {', '.join(sorted(known))})")
    preallocate(params)
