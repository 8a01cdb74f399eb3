"""Hostname files of a guest: pure rendering of /etc/hostname and /etc/hosts, and applying them.

INSTANCE_NAME is an FQDN under Ganeti 3.0; Ganeti 3.1 no longer expands names,
so it may be a short name.  A short name is qualified with a domain: the
`domain` OS parameter, else the first `dns_search` entry, else the guest's own
resolver settings (/etc/resolv.conf `domain`, else its first `search` entry);
without any, it stays short.  /etc/hostname gets the short name, /etc/hosts a
`127.0.1.1 fqdn short` line (Debian's convention), /etc/mailname the FQDN when
the guest has that file.
"""

from __future__ import annotations

from collections.abc import Callable

from osdef.errors import GuestError
from osdef.ganeti.params import OsParams
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


def qualify(name: str, domain: str | None) -> str:
    """name as an FQDN: unchanged when it has a dot, else name.domain (name when no domain)."""
    name = name.rstrip(".").lower()
    return f"{name}.{domain}" if domain and "." not in name else name


def name_domain(params: OsParams) -> str:
    """The domain the OS parameters give a short name: `domain`, else the first `dns_search`
    ("" when neither: the guest's resolver settings then decide)."""
    return params.domain or (params.dns_search[0] if params.dns_search else "")


def guest_domain(session: GuestSession) -> str | None:
    """The domain the guest's resolver would add: resolv.conf `domain`, else its first `search`
    entry (guest data: only a valid host name is taken)."""
    text = session.read_text_or_none("/etc/resolv.conf") or ""
    found: dict[str, str] = {}
    for line in text.splitlines():
        words = line.split("#", 1)[0].split()
        if len(words) >= 2 and words[0] in ("domain", "search"):
            found.setdefault(words[0], words[1].rstrip(".").lower())
    domain = found.get("domain") or found.get("search")
    return domain if domain and valid_hostname(domain) and "." in domain else None


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
        at = next((i + 1 for i, line in enumerate(out) if line.split()[:1] == ["127.0.0.1"]), 0)
        out.insert(at, wanted)
    return "\n".join(out) + "\n"


def current_hostname(session: GuestSession) -> str | None:
    text = session.read_text_or_none("/etc/hostname")
    if text is None:
        return None
    lines = [line.strip() for line in text.splitlines() if line.strip() and not line.startswith("#")]
    return lines[0] if lines else ""


def apply_hostname(session: GuestSession, name: str, log: Callable[[str], None],
                   old_fqdn: str | None = None, domain: str = "") -> None:
    """Write /etc/hostname, /etc/hosts and (when present) /etc/mailname; a short name (and a short
    old name) is qualified with domain, else the guest's resolver domain (see the module doc)."""
    if "." not in name or (old_fqdn and "." not in old_fqdn):
        domain = domain or guest_domain(session) or ""
    fqdn = qualify(name, domain)
    old_fqdn = qualify(old_fqdn, domain) if old_fqdn else None
    session.write_text("/etc/hostname", short_name(fqdn) + "\n")
    hosts = session.read_text_or_none("/etc/hosts") or "127.0.0.1\tlocalhost\n"
    session.write_text("/etc/hosts", render_hosts(hosts, fqdn, old_fqdn))
    if session.is_file("/etc/mailname"):
        session.write_text("/etc/mailname", fqdn + "\n")
    log(f"hostname set to {short_name(fqdn)} ({fqdn})")
