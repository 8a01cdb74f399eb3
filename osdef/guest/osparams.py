"""Pure editors for the files the OS-parameter steps change: authorized_keys, shadow.

fstab has its own editor (osdef.guest.fstab); the swap size is rounded here.

No guest access here; the hooks read the file through the appliance, call one
of these, and write the result back.  The values come from
osdef.ganeti.params.OsParams, parsed there once: SSH keys and the password
hash are not parsed again here.  The root password hash is never part of a
message.
"""

from __future__ import annotations

from collections.abc import Sequence

from osdef.disk.units import MiB
from osdef.errors import GuestError, ParamError


# -- ssh_authorized_keys ----------------------------------------------------------

def _key_identity(line: str) -> tuple[str, str] | None:
    """(type, base64) of an authorized_keys line, options skipped; None for comments/blank."""
    fields = line.split()
    for i, field in enumerate(fields[:-1]):
        if field.startswith(("ssh-", "ecdsa-", "sk-")):
            return field, fields[i + 1]
    return None


def merge_authorized_keys(existing: str, keys: Sequence[str]) -> str:
    """`existing` with each key appended unless the same key (type + data) is already there.

    `keys` are OsParams.ssh_authorized_keys: already checked and normalized."""
    lines = existing.splitlines()
    present = {ident for ident in map(_key_identity, lines) if ident}
    for key in keys:
        ident = _key_identity(key)
        if ident not in present:
            lines.append(key)
            present.add(ident)  # type: ignore[arg-type]
    return "\n".join(lines) + "\n" if lines else ""


# -- root_password_hash ----------------------------------------------------------

def set_root_hash(shadow: str, password_hash: str, today: int) -> str:
    """/etc/shadow with root's hash replaced; `today` = days since 1970 (for a 0 'last change').

    `password_hash` is OsParams.root_password_hash (its format checked there); only what would
    break the file's structure is refused here."""
    checked = password_hash
    if not checked or ":" in checked or "\n" in checked:
        raise ParamError("root_password_hash=(value hidden: secret) is invalid: empty or contains ':'")
    out, found = [], False
    for line in shadow.splitlines():
        fields = line.split(":")
        if fields[0] == "root" and len(fields) >= 2 and not found:
            fields[1] = checked
            if len(fields) >= 3 and fields[2] in ("", "0"):
                fields[2] = str(today)  # 0 would force a password change at first login
            line = ":".join(fields)
            found = True
        out.append(line)
    if not found:
        raise GuestError("/etc/shadow of the guest has no root entry; cannot set root_password_hash")
    return "\n".join(out) + "\n"


# -- swap_size -------------------------------------------------------------------

def swap_size_bytes(size: int) -> int:
    """Round up to whole MiB (mkswap needs at least 40 KiB; we ask for >= 1 MiB)."""
    if size < 0:
        raise ParamError(f"swap_size={size} must not be negative")
    return -(-size // MiB) * MiB
