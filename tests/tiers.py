"""The test tiers, one directory each, and the checks that keep a test in the right one.

    tests/pure/       in-process: parsing, models, formats, streams on temp files
    tests/scripts/    osdef's installed scripts run as Ganeti runs them; root, loop devices
    tests/differential/  osdef's exports judged by independent tools (util-linux, e2fsprogs,
                      dosfstools, 7-Zip) on generated and mutated disks; root, loop devices
    tests/appliance/  a libguestfs appliance (or a real diskimage-builder build)
    tests/boot/       boots a created disk under qemu
    tests/cluster/    the real two-node Ganeti cluster (tests/cluster/ganeti/harness.sh)
    tests/ceph/       a real Ceph cluster (tests/support/ceph.py): RBD disks through the scripts,
                      libguestfs, qemu and a real Ganeti cluster
    tests/trixie/     the .deb in Debian roots (debootstrap): a two-node Ganeti 3.1 cluster on
                      Debian 13, and a clean Debian 12 root

each as tests/<tier>/<domain>/test_*.py (domain: stream, guest, network, ...).

Each tier directory applies its marker (``-m pure``, ``-m "not cluster"``).  The
resource markers (guestfs, dib, blockdev, boot, ganeti, ceph) must fit the directory:
a test marked guestfs under tests/pure is a collection error.  Under
tests/pure, tests/scripts and tests/differential an in-process appliance
launch fails the test.
"""

from __future__ import annotations

import pytest

TIERS = ("trixie", "ceph", "cluster", "boot", "appliance", "differential", "scripts", "pure")  # most expensive first
# the cheapest tier a resource marker may appear in
NEEDS = {"ceph": "ceph", "ganeti": "cluster", "boot": "boot", "guestfs": "appliance", "dib": "appliance",
         "blockdev": "scripts"}
NO_APPLIANCE = ("pure", "differential", "scripts")


def cost(tier: str) -> int:
    """0 for the cheapest tier (pure), 7 for the most expensive (trixie: Debian roots and a Ganeti 3.1 cluster)."""
    return len(TIERS) - 1 - TIERS.index(tier)


def dir_tier(nodeid: str) -> str | None:
    """The tier whose directory holds the test (tests/<tier>/<domain>/test_*.py), if any."""
    parts = nodeid.split("::", 1)[0].split("/")
    return parts[1] if len(parts) >= 4 and parts[0] == "tests" and parts[1] in TIERS else None


def item_tier(item: pytest.Item) -> str:
    """The tier of one test: its directory's, else the most expensive of its resource markers."""
    tier = dir_tier(item.nodeid)
    if tier:
        return tier
    marked = {NEEDS[m.name] for m in item.iter_markers() if m.name in NEEDS}
    return next((t for t in TIERS if t in marked), "pure")


def apply_markers(items: list[pytest.Item]) -> list[str]:
    """Mark each test in a tier directory with its tier; the misplaced tests, one line each."""
    errors = []
    for item in items:
        tier = dir_tier(item.nodeid)
        if tier is None:
            continue
        item.add_marker(getattr(pytest.mark, tier))
        for mark in {m.name for m in item.iter_markers() if m.name in NEEDS}:
            if cost(NEEDS[mark]) > cost(tier):
                errors.append(f"{item.nodeid}: marked {mark}, so it belongs in tests/{NEEDS[mark]}/ "
                              f"(or a more expensive tier), not tests/{tier}/")
    return errors


class ApplianceForbidden(AssertionError):
    pass


def guard_launch(item: pytest.Item, monkeypatch: pytest.MonkeyPatch) -> None:
    """In the tiers without an appliance, guestfs.GuestFS.launch fails the test."""
    tier = dir_tier(item.nodeid)
    if tier not in NO_APPLIANCE:
        return
    try:
        import guestfs
    except ImportError:
        return

    def launch(self, *args, **kwargs):
        raise ApplianceForbidden(f"a test in tests/{tier}/ launched a libguestfs appliance: "
                                 "it belongs in tests/appliance/")

    monkeypatch.setattr(guestfs.GuestFS, "launch", launch)
