"""Parsers of single Ganeti environment variables: each names the variable it failed on.

The building blocks of osdef.ganeti.environment and osdef.ganeti.nics; none of them logs
a value (OS parameters may be secret).
"""

from __future__ import annotations

import ipaddress
import re
from typing import TypeVar
from collections.abc import Callable, Mapping

from osdef.errors import EnvError, quote

T = TypeVar("T")
MAX_VALUE = 64 * 1024  # any variable; longer ones are refused before use
MAX_PATH = 4095  # PATH_MAX less the NUL
_CONTROL_RE = re.compile(r"[\x00-\x1f\x7f]")

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


def get(env: Mapping[str, str], key: str) -> str | None:
    value = env.get(key)
    return None if value is None else value


def require(env: Mapping[str, str], key: str, why: str = "") -> str:
    value = env.get(key)
    if value is None or value == "":
        hint = f" ({why})" if why else ""
        raise EnvError(f"{key} is not set{hint}; is this script being run by Ganeti?")
    return value


def integer(env: Mapping[str, str], key: str, *, required: bool = False,
         minimum: int | None = None) -> int | None:
    raw = require(env, key) if required else get(env, key)
    if raw is None or raw == "":
        return None
    try:
        value = int(raw.strip())
    except ValueError:
        raise EnvError(f"{key}={quote(raw)} is not an integer") from None
    if minimum is not None and value < minimum:
        raise EnvError(f"{key}={value} must be >= {minimum}")
    return value


def number(env: Mapping[str, str], key: str) -> float | None:
    raw = get(env, key)
    if not raw:
        return None
    try:
        return float(raw)
    except ValueError:
        raise EnvError(f"{key}={quote(raw)} is not a number") from None


def flag(env: Mapping[str, str], key: str) -> bool:
    raw = (get(env, key) or "").strip().lower()
    if raw in ("", "0", "false", "no"):
        return False
    if raw in ("1", "true", "yes"):
        return True
    raise EnvError(f"{key}={quote(raw)} must be 0 or 1")


def optional(env: Mapping[str, str], key: str) -> str | None:
    value = env.get(key)
    return value if value else None


def parsed(env: Mapping[str, str], key: str, parse: Callable[[str], T], what: str,
            *, none_word: bool = False) -> T | None:
    """The value of key parsed by parse; unset/empty (and "None" if none_word) is None."""
    raw = optional(env, key)
    if raw is None or (none_word and raw.lower() == "none"):
        return None
    try:
        return parse(raw.strip())
    except ValueError:
        raise EnvError(f"{key}={quote(raw)} is not {what}") from None


def ip_address(env: Mapping[str, str], key: str) -> IPAddress | None:
    return parsed(env, key, ipaddress.ip_address, "an IP address", none_word=True)


def net4(env: Mapping[str, str], key: str) -> ipaddress.IPv4Network | None:
    return parsed(env, key, ipaddress.IPv4Network,
                   "an IPv4 network such as 198.51.100.0/24")


def net6(env: Mapping[str, str], key: str) -> ipaddress.IPv6Network | None:
    return parsed(env, key, ipaddress.IPv6Network, "an IPv6 network such as 2001:db8::/64")


def addr4(env: Mapping[str, str], key: str) -> ipaddress.IPv4Address | None:
    return parsed(env, key, ipaddress.IPv4Address, "an IPv4 address")


def addr6(env: Mapping[str, str], key: str) -> ipaddress.IPv6Address | None:
    return parsed(env, key, ipaddress.IPv6Address, "an IPv6 address")


def indexed_count(env: Mapping[str, str], prefix: str, item_key: str | tuple[str, ...]) -> int:
    """Check *_COUNT against the indexed variables actually present (each index has one of ``item_key``)."""
    keys = (item_key,) if isinstance(item_key, str) else item_key
    count_key = f"{prefix}_COUNT"
    count = integer(env, count_key, minimum=0)
    present = sorted(
        int(m.group(1))
        for k in env
        if (m := re.match(rf"^{prefix}_(\d+)_", k)) is not None
    )
    highest = present[-1] if present else -1
    if count is None:
        if present:
            raise EnvError(f"{count_key} is not set but {prefix}_{present[0]}_* variables are")
        return 0
    if highest >= count:
        raise EnvError(
            f"{count_key}={count} but {prefix}_{highest}_* is set: the counts do not match"
        )
    for i in range(count):
        if not any(env.get(f"{prefix}_{i}_{key}") for key in keys):
            others = "".join(f" (nor {prefix}_{i}_{key})" for key in keys[1:])
            raise EnvError(f"{count_key}={count} but {prefix}_{i}_{keys[0]} is not set{others}")
    return count


def check_path(key: str, path: str) -> str:
    """An absolute path of at most MAX_PATH characters without control characters (newlines …)."""
    if not path.startswith("/"):
        raise EnvError(f"{key}={quote(path)} is not an absolute path")
    if len(path) > MAX_PATH:
        raise EnvError(f"{key}={quote(path)} is longer than {MAX_PATH} characters")
    if _CONTROL_RE.search(path):
        raise EnvError(f"{key}={quote(path)} contains a control character")
    return path


def check_lengths(env: Mapping[str, str]) -> None:
    """Every value at most MAX_VALUE characters, before any of them is parsed or echoed."""
    for key, value in env.items():
        if len(value) > MAX_VALUE:
            raise EnvError(f"{key} is {len(value)} characters long (at most {MAX_VALUE}): refusing to use it")
