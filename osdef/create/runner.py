"""The step runner: the plan's customization steps, in their order, each named in the log.

osdef.create.steps loaded and ordered them before the first write; here they
run against the mounted guest (osdef.create.context.StepContext).  A step the
variant skips is logged; a step's failure that is not already an osdef error
becomes one GuestError line naming the step and its file.
"""

from __future__ import annotations

from osdef.create.context import StepContext
from osdef.create.steps import Hook
from osdef.errors import GuestError, OsdefError
from osdef.guest.session import one_line


def run_steps(ctx: StepContext) -> list[str]:
    """Run the plan's steps (the skipped ones logged); return the names that ran (site: `site:NAME`)."""
    ran: list[str] = []
    steps = ctx.plan.steps
    for hook in steps.hooks:
        if not steps.runs(hook):
            ctx.log(f"step {hook.name}: skipped by the variant")
            continue
        _run_one(hook, ctx)
        ran.append(f"site:{hook.name}" if hook.site else hook.name)
    return ran


def _run_one(hook: Hook, ctx: StepContext) -> None:
    kind = "site hook" if hook.site else "step"
    ctx.log(f"{kind} {hook.name}")
    try:
        hook.run(ctx)
    except OsdefError:
        raise
    except Exception as exc:
        raise GuestError(f"{kind} {hook.name} ({hook.path}) failed: {one_line(repr(exc))}") from exc
