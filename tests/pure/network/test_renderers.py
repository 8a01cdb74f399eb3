"""Golden files per backend for the same instances (tests/pure/network/golden/<backend>/<case>/<guest path>).

Regenerate after an intended change with OSDEF_UPDATE_GOLDEN=1 and review the diff.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import yaml

from osdef.guest import cloudinit
from osdef.guest.network import RENDERERS, model, render

from tests.support.network_cases import CASES

GOLDEN = Path(__file__).parent / "golden"
UPDATE = os.environ.get("OSDEF_UPDATE_GOLDEN") == "1"


def _rendered(backend: str, case: str) -> dict[str, str]:
    inst, params = CASES[case]
    state = model.build(inst, params)
    if backend.startswith("cloud-init"):  # the seed for netplan, and for cloud-init's own renderers
        config = cloudinit.network_config(state, for_netplan=backend == "cloud-init")
        return {cloudinit.NETWORK_CONFIG: config or ""}
    return render(backend, state)


def _golden(backend: str, case: str) -> dict[str, str]:
    base = GOLDEN / backend / case
    return {"/" + str(p.relative_to(base)): p.read_text() for p in sorted(base.rglob("*")) if p.is_file()}


@pytest.mark.parametrize("case", sorted(CASES))
@pytest.mark.parametrize("backend", [*RENDERERS, "cloud-init", "cloud-init-eni"])
def test_golden(backend, case):
    files = _rendered(backend, case)
    if UPDATE:
        for path, text in files.items():
            target = GOLDEN / backend / case / path.lstrip("/")
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(text)
    assert files == _golden(backend, case)


@pytest.mark.parametrize("case", sorted(CASES))
def test_yaml_outputs_parse_and_match_the_model(case):
    inst, params = CASES[case]
    state = model.build(inst, params)
    plan = yaml.safe_load(render("netplan", state)["/etc/netplan/90-osdef.yaml"])["network"]
    seed = yaml.safe_load(cloudinit.network_config(state))
    assert plan == seed and seed["version"] == 2
    assert [e["match"]["macaddress"] for e in seed["ethernets"].values()] == [n.mac for n in inst.nics]


def test_every_backend_matches_by_mac_never_by_kernel_name():
    inst, params = CASES["static-2nics-v4-v6"]
    state = model.build(inst, params)
    for backend in RENDERERS:
        text = "".join(render(backend, state).values())
        assert "eth0" not in text and "ens3" not in text
        for nic in inst.nics:
            assert nic.mac in text.lower(), backend


def test_network_none_renders_nothing():
    inst, params = CASES["static-2nics-v4-v6"]
    state = model.build(inst, {**params, "network": "none"})
    assert all(render(b, state) == {} for b in RENDERERS)
    assert cloudinit.network_config(state) is None
    assert cloudinit.network_config(state, for_netplan=False) is None


def test_the_seed_for_cloud_inits_own_renderers_has_gateways_not_default_routes():
    """cloud-init's ENI renderer writes routes as net-tools `route add` lines (seen failing on
    debian-12-cloud): its seed carries gateway4/gateway6, rendered as ifupdown `gateway` lines."""
    inst, params = CASES["static-2nics-v4-v6"]
    state = model.build(inst, params)
    seed = yaml.safe_load(cloudinit.network_config(state, for_netplan=False))
    nic0 = seed["ethernets"]["nic0"]
    assert "routes" not in nic0
    assert (nic0["gateway4"], nic0["gateway6"]) == ("198.51.100.1", "2001:db8:10::1")
    assert "gateway4" not in seed["ethernets"]["nic1"]
