"""What the guest has for its network: the backends and resolvers installed and enabled in it.

Each backend module names the paths that show it is installed (`MARKERS`) and
its systemd unit (`UNIT`, when it has one); select.read_facts() collects them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class NetworkFacts:
    """What is installed and enabled in the guest (by backend or resolver name)."""

    installed: frozenset[str]
    enabled: frozenset[str]
    resolv_conf_link: str | None = None  # target of /etc/resolv.conf when it is a symlink

    @classmethod
    def of(cls, installed: set[str] | frozenset[str] = frozenset(),
           enabled: set[str] | frozenset[str] = frozenset(),
           resolv_conf_link: str | None = None) -> NetworkFacts:
        return cls(frozenset(installed), frozenset(enabled), resolv_conf_link)


def when_installed(name: str) -> Callable[[NetworkFacts], bool]:
    """A backend's `in_charge`/`available` test: `name` is installed in the guest."""
    return lambda facts: name in facts.installed


def when_enabled(name: str) -> Callable[[NetworkFacts], bool]:
    """A backend's `in_charge`/`available` test: `name` is installed and enabled in the guest."""
    return lambda facts: name in facts.enabled
