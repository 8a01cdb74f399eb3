"""cloud-init NoCloud seed (meta-data, user-data, network-config v2) when the guest has cloud-init.

With cloud_init=off on a guest that has cloud-init (or with routed NICs that
cloud-init cannot render without netplan), 60-network writes the network
files and tells cloud-init to leave them alone; the seed then has no
network-config.
"""

from osdef.guest import cloudinit
from osdef.guest.network import model

NAME = "cloud-init"
EXCLUDABLE = True  # a variant may skip it


def run(ctx):
    plan, facts = ctx.plan, ctx.facts
    if not ctx.cloud_init_seed:
        return
    instance = plan.instance
    state = plan.network if plan.network is not None else model.NetworkState("none")
    has_netplan = "netplan" in facts.network.installed
    files = cloudinit.seed_files(
        iid=cloudinit.instance_id(instance.uuid if instance is not None else None, plan.hostname),
        fqdn=plan.hostname, state=state, ssh_keys=plan.params.ssh_authorized_keys,
        with_network=ctx.network_owner == "cloud-init", for_netplan=has_netplan)
    cloudinit.write_files(ctx.guest, files)
    ctx.log(f"cloud-init: NoCloud seed in {cloudinit.SEED_DIR}"
            f" ({'with' if cloudinit.NETWORK_CONFIG in files else 'without'} network-config)")
