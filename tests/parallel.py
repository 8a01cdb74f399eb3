"""The order of the test tiers and how `make test` splits them over the cores (pytest-xdist).

Every test belongs to one tier (tests/tiers.py: its directory, else its
most expensive marker), and modules are run in tier order, cluster first:
the longest work units start first, so that the last minutes are not one
worker alone on the cluster scenario.

Under xdist (`make test` runs `-n 2 --dist loadgroup`) a work unit is a whole
module, so that module-scoped fixtures (a shared appliance, a built disk, the
scenario's state) are set up once; every test under a directory in
ONE_WORKER shares a unit (the cluster harness: fixed state dirs, namespaces,
one package-scoped cluster; the ceph tier: one Ceph cluster per run, this
worker moved into its network namespace).  An explicit ``xdist_group`` mark still wins.
Every test under a directory in ONE_TEST is a unit of its own: the
differential tier's cases are independent and each takes seconds, so whole
modules would leave one worker alone at the end.
Without xdist only the order applies.
"""

from __future__ import annotations

import pytest

from tests.tiers import TIERS, item_tier

# shared global state: one work unit, one worker (the 3.0 cluster; one Ceph per run, this worker moved into
# its network namespace; the Debian roots + the 3.1 cluster)
ONE_WORKER = ("tests/cluster/ganeti/", "tests/ceph/", "tests/trixie/")
ONE_TEST = ("tests/differential/",)  # independent, seconds-long cases: one work unit each


def work_unit(nodeid: str) -> str:
    """What runs on one worker, in one go: a group, a shared-state directory, or a module."""
    path, _, rest = nodeid.partition("::")
    if rest.rfind("@") > rest.rfind("]"):  # xdist's loadgroup suffix (an explicit xdist_group)
        return rest.rsplit("@", 1)[1]
    if path.startswith(ONE_TEST):
        return nodeid
    return next((d for d in ONE_WORKER if path.startswith(d)), path)


def order_by_tier(items: list[pytest.Item]) -> None:
    """Stable sort: each work unit stays together, units in the order of their most expensive tier."""
    rank: dict[str, int] = {}
    for item in items:
        unit = work_unit(item.nodeid)
        rank[unit] = min(rank.get(unit, len(TIERS)), TIERS.index(item_tier(item)))
    items.sort(key=lambda item: rank[work_unit(item.nodeid)])


def make_scheduler(config, log):
    """xdist's loadgroup scheduler, with work units from work_unit() kept in collection order."""
    from xdist.scheduler import LoadGroupScheduling

    class TierScheduling(LoadGroupScheduling):
        def _split_scope(self, nodeid: str) -> str:
            return work_unit(nodeid)

    config.option.loadscopereorder = False  # the order is order_by_tier's, not "most tests first"
    return TierScheduling(config, log)
