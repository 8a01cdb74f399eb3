"""Rename a guest in place: /etc/hostname, /etc/hosts, /etc/mailname.

Ganeti runs rename after every import, so a guest whose current hostname is
not the old instance name only gets a warning; the new name is set anyway.
"""

from __future__ import annotations

from collections.abc import Callable

from osdef.guest.hostnames import apply_hostname, current_hostname, short_name, validate_fqdn
from osdef.guest.session import GuestSession


def rename_guest(session: GuestSession, old_fqdn: str, new_fqdn: str,
                 log: Callable[[str], None], domain: str = "") -> None:
    """Set the new name on the mounted guest; warn when its current name is not the old one."""
    new_fqdn = validate_fqdn(new_fqdn)
    old_fqdn = old_fqdn.rstrip(".").lower()
    current = current_hostname(session)
    if current not in (old_fqdn, short_name(old_fqdn)):
        log(f"warning: the guest's hostname is {current!r}, not {short_name(old_fqdn)!r};"
            f" setting {short_name(new_fqdn)!r} anyway")
    apply_hostname(session, new_fqdn, log, old_fqdn=old_fqdn, domain=domain)
