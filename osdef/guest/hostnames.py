"""Hostname files of a guest: pure rendering of /etc/hostname and /etc/hosts, and applying them.

Ganeti's INSTANCE_NAME is the FQDN.  /etc/hostname gets the short name,
/etc/hosts a `127.0.1.1 fqdn short` line (Debian's convention), /etc/mailname
the FQDN when the guest has that file.
"""

from __future__ import annotations

from collections.abc import Callable

from osdef.errors import GuestError
from osdef.guest.session import GuestSession
from osdef.vocab import valid_hostname

LOOPBACK_HOST_IP = "127.0.1.1"


def validate_fqdn(name: str) -> str:
    """Return the name lower-cased if it is an RFC 1123 host name, else raise GuestError."""
    candidate = name.rstrip(".").lower()
    if not valid_hostname(candidate):
        raise GuestError(f"invalid hostname {name!r}: use letters, digits and '-' in dot-separated"
                         " labels of at most 63 characters")
    return candidate


def short_name(fqdn: str) -> str:
    return fqdn.split(".", 1)[0]


def hosts_names(fqdn: str) -> str:
    short = short_name(fqdn)
    return fqdn if short == fqdn else f"{fqdn} {short}"


def render_hosts(text: str, fqdn: str, old_fqdn: str | None = None) -> str:
    """/etc/hosts with the 127.0.1.1 line set to `fqdn short`.

    Other lines are kept; on a rename, old names on them are replaced by the
    new ones.  Without a 127.0.1.1 line, one is added after the 127.0.0.1 line
    (or at the top).
    """
    new_short = short_name(fqdn)
    renames: dict[str, str] = {}
    if old_fqdn:
        renames = {old_fqdn: fqdn, short_name(old_fqdn): new_short}
    wanted = f"{LOOPBACK_HOST_IP}\t{hosts_names(fqdn)}"
    out: list[str] = []
    placed = False
    for line in text.splitlines():
        body = line.split("#", 1)[0].split()
        if body and body[0] == LOOPBACK_HOST_IP:
            if not placed:
                out.append(wanted)
                placed = True
            continue
        if body and renames and any(n in renames for n in body[1:]):
            comment = line[line.index("#"):] if "#" in line else ""
            names = [renames.get(n, n) for n in body[1:]]
            line = "\t".join([body[0], " ".join(names)]) + (f" {comment}" if comment else "")
        out.append(line)
    if not placed:
        at = next((i + 1 for i, l in enumerate(out) if l.split()[:1] == ["127.0.0.1"]), 0)
        out.insert(at, wanted)
    return "\n".join(out) + "\n"


def current_hostname(session: GuestSession) -> str | None:
    text = session.read_text_or_none("/etc/hostname")
    if text is None:
        return None
    lines = [l.strip() for l in text.splitlines() if l.strip() and not l.startswith("#")]
    return lines[0] if lines else ""


def apply_hostname(session: GuestSession, fqdn: str, log: Callable[[str], None],
                   old_fqdn: str | None = None) -> None:
    """Write /etc/hostname, /etc/hosts and (when present) /etc/mailname."""
    session.write_text("/etc/hostname", short_name(fqdn) + "\n")
    hosts = session.read_text_or_none("/etc/hosts") or "127.0.0.1\tlocalhost\n"
    session.write_text("/etc/hosts", render_hosts(hosts, fqdn, old_fqdn))
    if session.is_file("/etc/mailname"):
        session.write_text("/etc/mailname", fqdn + "\n")
    log(f"hostname set to {short_name(fqdn)} ({fqdn})")
