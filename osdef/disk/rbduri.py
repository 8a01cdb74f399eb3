"""A disk given as a URI (Ganeti's DISK_N_URI, EXPORT_DISK_URI, IMPORT_DISK_URI): parsed, checked, rendered.

Ganeti passes a URI instead of a path for a disk with userspace access only
(``access=userspace``: an ``ext`` provider whose ``attach`` printed an empty
first line and ``kvm:rbd:<pool>/<image>``, or the ``rbd`` template).  The
URI is qemu's ``rbd:`` filename syntax; osdef accepts this subset of it::

    rbd:<pool>[/<namespace>]/<image>[@<snapshot>][:id=<user>][:conf=<ceph.conf>]

``id`` is the cephx user without ``client.`` (qemu's default: admin),
``conf`` the Ceph config file that names the monitors and the keyring.
Everything else is refused with one line: a ``key=`` option (a cephx key
in Ganeti's environment would reach qemu's command line; the keyring named
by ceph.conf holds it), options this module does not know, qemu's ``\\``
escapes, and ``gluster://`` (libguestfs 1.54 removed gluster).  Pure: no
Ceph library is needed to parse, and no message ever repeats a value that
could be secret.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, replace
from pathlib import Path

SCHEME = "rbd:"
DEFAULT_CONF = "/etc/ceph/ceph.conf"
DEFAULT_USER = "admin"
NAME_RE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.+-]{0,127}\Z")  # pools, namespaces, images, snapshots
USER_RE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}\Z")
CONF_RE = re.compile(r"/[^\x00-\x20\x7f:@\\]{1,4094}\Z")
_SECRET_KEYS = ("key", "keyfile", "password-secret", "secret")


class UriError(ValueError):
    """A disk URI that osdef cannot or will not use; the message is one admin-facing line."""


@dataclass(frozen=True)
class RbdUri:
    """An RBD image (or a snapshot of one) and how to reach its cluster."""

    pool: str
    image: str
    namespace: str | None = None
    snapshot: str | None = None
    user: str | None = None  # cephx id, without "client."
    conf: str | None = None  # path of ceph.conf

    @property
    def spec(self) -> str:
        """``pool[/namespace]/image[@snapshot]``: what rbd(8) and libguestfs call the image."""
        ns = f"{self.namespace}/" if self.namespace else ""
        snap = f"@{self.snapshot}" if self.snapshot else ""
        return f"{self.pool}/{ns}{self.image}{snap}"

    def __str__(self) -> str:
        """The URI as osdef writes it (canonical; ``str(Path(uri)) == uri`` holds for it)."""
        opts = "".join(f":{k}={v}" for k, v in (("id", self.user), ("conf", self.conf)) if v)
        return f"{SCHEME}{self.spec}{opts}"

    @property
    def display(self) -> str:
        """For messages: ``rbd:pool/image[@snap]``, no options."""
        return SCHEME + self.spec

    def with_defaults(self, user: str, conf: str) -> RbdUri:
        """The URI with the site's user and ceph.conf where it names none (both checked as if in a URI)."""
        _, user = _option("id", user, "the site's ceph.user")
        _, conf = _option("conf", conf, "the site's ceph.conf")
        return replace(self, user=self.user or user, conf=self.conf or conf)

    def at_snapshot(self, snapshot: str | None) -> RbdUri:
        return replace(self, snapshot=snapshot)


def as_location(value: str | os.PathLike[str]) -> str | Path:
    """A disk location as osdef passes it around: a URI stays the string it is, a path becomes a Path."""
    text = os.fspath(value)
    return text if is_uri(text) else Path(text)


def is_uri(location: object) -> bool:
    """Does a disk location (a path or a URI) look like a URI rather than a path?"""
    text = str(location)
    return not text.startswith("/") and re.match(r"[A-Za-z][A-Za-z0-9+.-]*:", text) is not None


def _scheme_problem(text: str, what: str) -> str | None:
    scheme = text.split(":", 1)[0].lower()
    if scheme == "gluster" or scheme.startswith("gluster+"):
        return (f"{what} is a GlusterFS URI: not supported (libguestfs 1.54 removed gluster); "
                "give the disk a path (access=kernel) or use RBD")
    if scheme != "rbd":
        return (f"{what} is a {scheme!r} URI: osdef reads only rbd:<pool>/<image> URIs "
                "(or a device path)")
    return None


def _name(value: str, what: str, field: str) -> str:
    if not NAME_RE.match(value) or value in (".", ".."):
        raise UriError(f"{what}: {field} {value!r} is not a valid name (letters, digits and ._+- only, "
                       "at most 128 characters)")
    return value


def _option(key: str, value: str, what: str) -> tuple[str, str]:
    if key in _SECRET_KEYS:
        raise UriError(f"{what} carries a cephx secret ({key}=…): refused, keep keys out of Ganeti; "
                       "name a keyring in ceph.conf instead")
    if key == "id":
        user = value[len("client."):] if value.startswith("client.") else value
        if not USER_RE.match(user):
            raise UriError(f"{what}: id {value!r} is not a valid cephx user name")
        return key, user
    if key == "conf":
        if not CONF_RE.match(value):
            raise UriError(f"{what}: conf {value!r} is not an absolute path without ':', '@' or spaces")
        return key, value
    raise UriError(f"{what}: option {key!r} is not supported (osdef reads id= and conf=; put other Ceph "
                   "settings in ceph.conf)")


def parse(text: str, what: str = "the disk URI") -> RbdUri:
    """The RbdUri in ``text``; anything else raises UriError naming ``what`` (e.g. "DISK_0_URI")."""
    problem = _scheme_problem(text, what) if is_uri(text) else f"{what} is not a URI"
    if problem:
        raise UriError(problem)
    if "\\" in text or re.search(r"[\x00-\x1f\x7f\s]", text):
        raise UriError(f"{what} contains a backslash, a space or a control character: not an rbd URI "
                       "osdef reads")
    body = text[len(SCHEME):]
    image_part, *options = body.split(":")
    head, at, snapshot = image_part.partition("@")
    names = head.split("/")
    if len(names) not in (2, 3) or (at and not snapshot):
        raise UriError(f"{what} must be rbd:<pool>/<image> (optionally <pool>/<namespace>/<image>, "
                       "@<snapshot>, :id=<user>, :conf=<path>)")
    pool, image = _name(names[0], what, "pool"), _name(names[-1], what, "image")
    namespace = _name(names[1], what, "namespace") if len(names) == 3 else None
    opts: dict[str, str] = {}
    for option in options:
        key, eq, value = option.partition("=")
        if not eq or not value:
            raise UriError(f"{what}: option {key!r} has no value (write :key=value)")
        key, value = _option(key, value, what)
        if key in opts:
            raise UriError(f"{what}: option {key!r} is given twice")
        opts[key] = value
    return RbdUri(pool, image, namespace, _name(snapshot, what, "snapshot") if snapshot else None,
                  opts.get("id"), opts.get("conf"))
