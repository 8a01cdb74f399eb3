"""Write a rendered network configuration into the mounted guest, with what each backend needs around it.

The chosen backend's `prepare` runs first (e.g. netplan renames the image's
other files, networkd is enabled), then every other installed backend's
`stand_down` (ifupdown: the image's stanzas commented out), then osdef's files
are written with the backend's FILE_MODE (0600 files owned by root).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from osdef.guest.network.facts import NetworkFacts
from osdef.guest.network.model import NetworkState
from osdef.guest.network.select import BACKENDS


def apply(session: Any, backend: str, state: NetworkState, facts: NetworkFacts,
          log: Callable[[str], None]) -> list[str]:
    """Write the files for `backend`; return their paths."""
    chosen = BACKENDS[backend]
    files = chosen.render(state)
    chosen.prepare(session, facts, log)
    for other in BACKENDS.values():
        if other is not chosen and other.NAME in facts.installed:
            other.stand_down(session, log)
    for path, text in files.items():
        session.write_text(path, text, mode=chosen.FILE_MODE)
        if chosen.FILE_MODE == 0o600:
            session.chown(path)
    return sorted(files)
