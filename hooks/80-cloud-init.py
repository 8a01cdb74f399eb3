"""cloud-init NoCloud seed (meta-data, user-data, network-config v2) when the guest has cloud-init.

With cloud_init=off on a guest that has cloud-init (or with routed NICs that
cloud-init cannot render without netplan), 60-network writes the network
files and tells cloud-init to leave them alone; the seed then has no
network-config.
"""

from osdef.guest import cloudinit
from osdef.guest.network import model, select

NAME = "cloud-init"


def run(ctx):
    g = ctx.guest
    has_cloud_init = any(g.exists(p) for p in cloudinit.CLOUD_INIT_MARKERS)
    if not cloudinit.wanted(str(ctx.params.get("cloud_init") or "auto"), has_cloud_init):
        return
    instance = getattr(ctx, "instance", None)
    state = model.build(instance, ctx.params) if instance is not None else model.NetworkState("none")
    has_netplan = "netplan" in select.read_facts(g).installed
    files = cloudinit.seed_files(
        iid=cloudinit.instance_id(instance.uuid if instance is not None else None, ctx.hostname),
        fqdn=ctx.hostname, state=state,
        ssh_keys=tuple(ctx.params.get("ssh_authorized_keys") or ()),
        with_network=cloudinit.configures_network(state, has_netplan))
    cloudinit.write_files(g, files)
    ctx.log(f"cloud-init: NoCloud seed in {cloudinit.SEED_DIR}"
            f" ({'with' if cloudinit.NETWORK_CONFIG in files else 'without'} network-config)")
