"""dns_servers / dns_search where the guest's resolver reads them (resolv.conf, resolved or resolvconf)."""

from osdef.guest.network import dns, model

NAME = "dns"
EXCLUDABLE = True  # a variant may skip it


def run(ctx):
    state = model.dns_only(ctx.plan.params)
    if not state.dns_servers and not state.dns_search:
        return
    g = ctx.guest
    facts = ctx.facts.network
    for path, text in dns.render(state, facts).items():
        if path == dns.RESOLV_CONF and facts.resolv_conf_link is not None:
            g.remove(path)  # a link into /run (empty here) or elsewhere: replace it by a file
        g.write_text(path, text, mode=0o644)
        ctx.log(f"dns: {len(state.dns_servers)} server(s), {len(state.dns_search)} search domain(s)"
                f" in {path}")
