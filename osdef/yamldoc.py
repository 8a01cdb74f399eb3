"""YAML documents with a schema: the one loader of the site config, variants and recipes.

``load`` reads a file and parses it with ``yaml.safe_load``; a file that cannot
be read or is not YAML is one line naming the file (and the line of the YAML
error), raised as the caller's error type.  The helpers below check the
shapes all three schemas share; the messages name the file and the key.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from osdef.errors import OsdefError


def load(path: Path, error: type[OsdefError], what: str = "") -> Any:
    """The YAML document in path; `what` names it in the unreadable-file line ("recipe")."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise error(f"{path}: cannot read{' ' + what if what else ''}: {exc.strerror}") from None
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1})" if mark is not None else ""
        raise error(f"{path}: not valid YAML{where}") from None


def scalar_text(value: Any, *, lists: bool = False) -> str | None:
    """An OS-parameter default as Ganeti would pass it (true → yes, 3 → "3", with
    lists=True [a, b] → "a,b"), or None when the value is not a scalar."""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, (int, float)):
        return str(value)
    if lists and isinstance(value, list):
        return ",".join(str(v) for v in value)
    return value if isinstance(value, str) else None
