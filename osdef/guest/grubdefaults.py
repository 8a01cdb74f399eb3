"""The /etc/default/grub values grub.cfg depends on, read the way grub-mkconfig sources them.

grub-mkconfig sources /etc/default/grub, then /etc/default/grub.d/*.cfg in
name order.  Images ship plain assignments there, so `evaluate` reads them
in Python (no command in the guest: each costs about a second under TCG):
NAME=value lines whose values are words, '…' and "…" strings with $VAR /
${VAR} references, optionally `export`ed, with comments.  Anything else — a
command substitution, a conditional, a sourced file — returns None, and the
caller runs DEFAULTS_QUERY through the guest's shell instead.  One exception,
because every Debian image has it: GRUB_DISTRIBUTOR set by a command
(`lsb_release -i -s || echo Debian`) is only a menu title, and is taken as
the first word of NAME in /etc/os-release (what lsb_release -i prints there).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

GRUB_DEFAULTS = "/etc/default/grub"
GRUB_DEFAULTS_D = "/etc/default/grub.d/*.cfg"
DEFAULTS_QUERY = (
    ". /etc/default/grub >/dev/null 2>&1; "
    'for x in /etc/default/grub.d/*.cfg; do [ -e "$x" ] && . "$x" >/dev/null 2>&1; done; '
    'printf "%s\\n" "$GRUB_CMDLINE_LINUX" "$GRUB_CMDLINE_LINUX_DEFAULT" '
    '"${GRUB_TIMEOUT:-5}" "$GRUB_TERMINAL" "$GRUB_SERIAL_COMMAND" "$GRUB_DISTRIBUTOR"')

_ASSIGNMENT = re.compile(r"(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)=(.*)")
_REFERENCE = re.compile(r"\$(?:\{([A-Za-z_][A-Za-z0-9_]*)\}|([A-Za-z_][A-Za-z0-9_]*))")
_BARE_UNSAFE = set("\"'`\\|&;<>()*?[]{}~")
_COMMAND_SUBSTITUTION = ("`", "$(")


@dataclass(frozen=True)
class GrubDefaults:
    """The /etc/default/grub values grub.cfg depends on (after shell evaluation)."""

    cmdline: str = ""
    cmdline_default: str = ""
    timeout: str = "5"
    terminal: str = ""
    serial_command: str = ""
    distributor: str = ""


def _clean(value: str) -> str:
    return " ".join(value.split())


def _defaults(cmdline: str, default: str, timeout: str, terminal: str, serial: str,
              distributor: str) -> GrubDefaults:
    timeout = _clean(timeout)
    return GrubDefaults(_clean(cmdline), _clean(default),
                        timeout if timeout.lstrip("-").isdigit() else "5",
                        _clean(terminal), _clean(serial), _clean(distributor))


def parse_defaults_query(output: str) -> GrubDefaults:
    """The six lines printed by DEFAULTS_QUERY."""
    lines = (output.split("\n") + [""] * 6)[:6]
    return _defaults(*lines)


class _NotPlain(Exception):
    """The value needs a real shell."""


def _expand(text: str, env: dict[str, str]) -> str:
    if "$" in _REFERENCE.sub("", text):
        raise _NotPlain  # ${VAR:-x}, $1, $$ …
    return _REFERENCE.sub(lambda m: env.get(m.group(1) or m.group(2), ""), text)


def _value(raw: str, env: dict[str, str]) -> str:
    """One shell word (the right side of NAME=), expanded; a trailing # comment is allowed."""
    out: list[str] = []
    i, n = 0, len(raw)
    while i < n:
        ch = raw[i]
        if ch == "'":
            end = raw.find("'", i + 1)
            if end < 0:
                raise _NotPlain
            out.append(raw[i + 1:end])
            i = end + 1
        elif ch == '"':
            j, part = i + 1, []
            while j < n and raw[j] != '"':
                if raw[j] == "\\" and j + 1 < n and raw[j + 1] in '"\\$`':
                    if raw[j + 1] in "$`":
                        raise _NotPlain  # a literal $ would look like a reference below
                    part.append(raw[j + 1])
                    j += 2
                    continue
                if raw[j] == "`":
                    raise _NotPlain
                part.append(raw[j])
                j += 1
            if j >= n:
                raise _NotPlain
            text = "".join(part)
            if "$(" in text:
                raise _NotPlain
            out.append(_expand(text, env))
            i = j + 1
        elif ch in " \t":
            rest = raw[i:].strip()
            if rest and not rest.startswith("#"):
                raise _NotPlain  # `A=b c` runs command c
            break
        else:
            j = i
            while j < n and raw[j] not in " \t\"'":
                if raw[j] in _BARE_UNSAFE:
                    raise _NotPlain
                j += 1
            out.append(_expand(raw[i:j], env))
            i = j
    return "".join(out)


def _is_command(raw: str) -> bool:
    return any(mark in raw for mark in _COMMAND_SUBSTITUTION)


def evaluate(files: list[str], os_release: Callable[[], str | None] = lambda: None) -> GrubDefaults | None:
    """The defaults from the files' texts (in sourcing order), or None when a shell is needed.

    `os_release` returns /etc/os-release's text; called only for a GRUB_DISTRIBUTOR command.
    """
    env: dict[str, str] = {}
    for text in files:
        for line in text.splitlines():
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            match = _ASSIGNMENT.fullmatch(line)
            if match is None:
                return None
            name, raw = match.groups()
            if name == "GRUB_DISTRIBUTOR" and _is_command(raw):
                env[name] = _os_release_name(os_release())
                continue
            try:
                env[name] = _value(raw, env)
            except _NotPlain:
                return None
    return _defaults(env.get("GRUB_CMDLINE_LINUX", ""), env.get("GRUB_CMDLINE_LINUX_DEFAULT", ""),
                     env.get("GRUB_TIMEOUT", "") or "5", env.get("GRUB_TERMINAL", ""),
                     env.get("GRUB_SERIAL_COMMAND", ""), env.get("GRUB_DISTRIBUTOR", ""))


def _os_release_name(text: str | None) -> str:
    """What `lsb_release -i -s || echo Debian` prints: the first word of os-release NAME."""
    for line in (text or "").splitlines():
        key, _, value = line.strip().partition("=")
        if key == "NAME":
            words = value.strip().strip("\"'").split()
            if words:
                return words[0]
    return "Debian"
