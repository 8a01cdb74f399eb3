"""Configure every NIC (matched by MAC) for the backend the guest uses; see docs/network.md.

Skipped when cloud-init configures the network from osdef's NoCloud seed
(``ctx.network_owner``, decided once: not for on-link routes without netplan,
see osdef.guest.cloudinit.configures_network), and with network=none.  The
network model is the plan's (built once, before any write).
"""

from osdef.errors import GuestError
from osdef.guest import cloudinit
from osdef.guest.network.apply import apply

NAME = "network"
EXCLUDABLE = True  # a variant may skip it


def run(ctx):
    plan, facts = ctx.plan, ctx.facts
    if plan.instance is None:
        ctx.log("network: no NIC information from Ganeti; the image's network configuration is kept")
        return
    state = plan.network
    if not state.configures_network:
        ctx.log(f"network: nothing to configure (network={state.mode}, {len(plan.instance.nics)} NIC(s))")
        return
    g = ctx.guest
    if ctx.network_owner == "cloud-init":
        ctx.log(f"network: {len(state.nics)} NIC(s) left to cloud-init's network-config (NoCloud seed)")
        return
    if ctx.cloud_init_seed:
        ctx.log("network: on-link routes (routed NICs) that cloud-init cannot render here:"
                " osdef writes the network files, cloud-init keeps off the network")
    backend = facts.network_backend
    if backend is None:
        raise GuestError("the guest has none of netplan, NetworkManager, systemd-networkd or ifupdown;"
                         " install one in the image, or set network=none")
    for nic in state.nics:
        if not nic.dhcp4 and not nic.routed and not any(r.is_default for r in nic.routes) \
                and nic.ipv4_addresses and nic.ipv4_addresses[0].network.prefixlen == 32:
            ctx.log(f"warning: NIC {nic.index} has an IP but no Ganeti network (subnet/gateway):"
                    " configured as /32 without a gateway")
    written = apply(g, backend, state, facts.network, ctx.log)
    if facts.has_cloud_init:
        cloudinit.write_files(g, cloudinit.disabled_network_files())
    summary = ", ".join(
        f"nic{n.index}={'dhcp' if n.dhcp4 else ' '.join(str(a) for a in n.ipv4_addresses)}"
        + (" routed" if n.routed else "") for n in state.nics)
    ctx.log(f"network: {backend}: {summary} ({len(written)} file(s))")
