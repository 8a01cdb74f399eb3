"""Where the `rbd` provider's volumes live: pool, cephx user and ceph.conf, and how long to wait.

Each comes from the disk's EXTP_* parameter (``--disk 0:provider=rbd,pool=…``)
if set, else from the provider dir's ``extstorage.yaml`` (written by
``osdef install-extstorage --provider rbd``), else the default: pool ``rbd``,
no user (librados' default, client.admin; the URI then has no ``:id=``),
/etc/ceph/ceph.conf.  ``parameters.list`` and ``verify`` come from the same
declarations.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from collections.abc import Mapping

from osdef.disk.rbduri import CONF_RE, DEFAULT_CONF, DEFAULT_USER, NAME_RE, USER_RE, RbdUri
from osdef.extstorage import settings as provider_settings
from osdef.extstorage.errors import ProviderConfigError, RequestError
from osdef.extstorage.params import GANETI_PARAMS, ExtParam

DEFAULT_POOL = "rbd"
DEFAULT_CONNECT_TIMEOUT = 30
KEYS = ("pool", "user", "conf", "connect_timeout")

PARAMETERS: tuple[ExtParam, ...] = (
    ExtParam("pool", DEFAULT_POOL, "the Ceph pool of the volume's RBD image (default: the provider's, rbd)"),
    ExtParam("user", "", "the cephx user (without client.) for the image; it appears in the URI as :id="),
    ExtParam("conf", DEFAULT_CONF, "the ceph.conf naming the monitors and the keyring"),
)


@dataclass(frozen=True)
class Placement:
    """The pool, user and ceph.conf of one request; ``user`` None: librados' default (admin)."""

    pool: str = DEFAULT_POOL
    user: str | None = None
    conf: str = DEFAULT_CONF
    connect_timeout: int = DEFAULT_CONNECT_TIMEOUT

    @property
    def cephx_user(self) -> str:
        return self.user or DEFAULT_USER

    def uri(self, image: str, snapshot: str | None = None) -> RbdUri:
        """The image's URI as attach prints it: :id= only when a user is named, :conf= only when not the default."""
        return RbdUri(self.pool, image, snapshot=snapshot, user=self.user,
                      conf=self.conf if self.conf != DEFAULT_CONF else None)


def parameters_list() -> str:
    """parameters.list: `name description` per line, nothing else (Ganeti parses it as is)."""
    return "".join(f"{p.name} {p.description}\n" for p in PARAMETERS)


def _checked(key: str, value: object, where: str) -> str:
    text = value if isinstance(value, str) else ""
    pattern = {"pool": NAME_RE, "user": USER_RE, "conf": CONF_RE}[key]
    if not pattern.match(text):
        what = {"pool": "a pool name", "user": "a cephx user name without client.",
                "conf": "an absolute path without ':' or '@'"}[key]
        raise RequestError(f"{where}={value!r} is not {what}")
    return text


def defaults(provider_dir: Path) -> Placement:
    """The provider dir's extstorage.yaml (no file: the built-in defaults)."""
    found = provider_settings.read(provider_dir)
    if found is None:
        return Placement()
    text, path = found
    data = provider_settings.mapping(text, path, KEYS)
    try:
        values = {k: _checked(k, data[k], f"{path}: {k}") for k in ("pool", "user", "conf") if k in data}
    except RequestError as exc:
        raise ProviderConfigError(str(exc)) from None
    timeout = data.get("connect_timeout", DEFAULT_CONNECT_TIMEOUT)
    if isinstance(timeout, bool) or not isinstance(timeout, int) or timeout < 1:
        raise ProviderConfigError(f"{path}: connect_timeout must be a whole number of seconds >= 1")
    return Placement(connect_timeout=timeout, **values)


def placement(params: Mapping[str, str], base: Placement) -> Placement:
    """The request's placement: its EXTP_* parameters over the provider's defaults (checked)."""
    check(params)
    values = {k: _checked(k, params[k], f"EXTP_{k.upper()}") for k in ("pool", "user", "conf")
              if params.get(k)}
    return Placement(values.get("pool", base.pool), values.get("user", base.user),
                     values.get("conf", base.conf), base.connect_timeout)


def check(params: Mapping[str, str]) -> None:
    """Reject unknown provider parameters (EXTP_* without the prefix)."""
    known = {p.name for p in PARAMETERS}
    for name in sorted(params):
        if name not in known and name not in GANETI_PARAMS:
            raise RequestError(f"unknown parameter {name} for the rbd provider (known: {', '.join(sorted(known))})")


def render(base: Placement) -> str:
    """extstorage.yaml for these defaults."""
    lines = ["# osdef ExtStorage provider `rbd`; written by osdef install-extstorage --provider rbd",
             f"pool: {base.pool}", f"conf: {base.conf}", f"connect_timeout: {base.connect_timeout}"]
    if base.user:
        lines.append(f"user: {base.user}")
    return "\n".join(lines) + "\n"
