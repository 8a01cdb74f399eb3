"""Keep an instance's SSH host keys across a reinstall: read them before the disk is rewritten, restore after.

The keys travel in the create plan; the restore is the step hooks/68-ssh-host-keys-restore.

Keys are secret: their content is never logged, only file names and counts.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path

from osdef.config import LibguestfsSettings
from osdef.errors import GuestError
from osdef.guest.session import GuestSession

HOST_KEY_GLOB = "/etc/ssh/ssh_host_*"


def _is_key_file(path: str) -> bool:
    name = path.rsplit("/", 1)[-1]
    return name.startswith("ssh_host_") and (name.endswith("_key") or name.endswith("_key.pub")
                                             or name.endswith("-cert.pub"))


def save_host_keys(session: GuestSession) -> dict[str, bytes]:
    """The host key files of the mounted guest (path → bytes); {} when it has none."""
    keys: dict[str, bytes] = {}
    for path in session.glob(HOST_KEY_GLOB):
        if _is_key_file(path) and session.is_file(path):
            keys[path] = session.read_bytes(path)
    return keys


def restore_host_keys(session: GuestSession, keys: Mapping[str, bytes],
                      log: Callable[[str], None] = lambda _m: None) -> int:
    """Put saved keys back (private 0600, public 0644, root-owned); return how many files."""
    if not keys:
        return 0
    for path in keys:
        if not _is_key_file(path):
            raise GuestError(f"refusing to restore {path}: not an SSH host key path")
    session.mkdir("/etc/ssh")
    for path, data in sorted(keys.items()):
        session.write_bytes(path, data, mode=0o644 if path.endswith(".pub") else 0o600)
        session.chown(path)
    log(f"restored {len(keys)} SSH host key file(s) of the previous installation")
    return len(keys)


def read_host_keys(disk: Path | str, settings: LibguestfsSettings, log: Callable[[str], None] = lambda _m: None
                   ) -> dict[str, bytes]:
    """Open `disk` read-only in its own appliance and save its host keys.

    For reinstall, before the disk is rewritten.  A disk without a recognizable
    OS (blank, damaged) gives {} and a log line: the reinstall then makes new keys.
    osdef.create.plan puts them into the create plan (CreatePlan.saved_host_keys).
    """
    try:
        with GuestSession([disk], settings, readonly=True, log=log) as session:
            session.mount_inspected_root()
            keys = save_host_keys(session)
    except GuestError as exc:
        log(f"reinstall: could not read the old SSH host keys ({exc}); new keys will be made")
        return {}
    log(f"reinstall: kept {len(keys)} SSH host key file(s) of the previous installation")
    return keys
