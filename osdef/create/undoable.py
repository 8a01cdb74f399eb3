"""Steps that know how to undo themselves, and the runner that rolls back on failure.

Like diskimage-builder's block-device nodes: each step has a `run` and an
optional `undo`; when a later step fails, the completed steps are undone in
reverse order and the original error is re-raised.  ``StepRunner.call`` runs
one named step and hands its result forward (the layouts' results flow into
the next step as values, as DIB's named node results do).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

T = TypeVar("T")


@dataclass(frozen=True)
class Step:
    """One named action; `undo` reverts it (or makes its partial result harmless)."""

    name: str
    run: Callable[[], None]
    undo: Callable[[], None] | None = None
    during_launch: bool = False  # host-side work that may overlap the appliance launch


@dataclass
class StepRunner:
    """Runs steps, remembers the completed ones, and undoes them on request."""

    log: Callable[[str], None]
    done: list[Step] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)

    def run(self, steps: list[Step]) -> None:
        for step in steps:
            self.log(step.name)
            started = time.monotonic()
            # registered before running: a half-done step gets undone too
            self.done.append(step)
            step.run()
            self.timings[step.name] = time.monotonic() - started

    def call(self, name: str, fn: Callable[..., T], *args: Any) -> T:
        """Run one named step (logged, timed, no undo) and return its result."""
        self.log(name)
        started = time.monotonic()
        result = fn(*args)
        self.timings[name] = time.monotonic() - started
        return result

    def rollback(self) -> None:
        """Undo completed steps, newest first; undo failures are logged, not raised."""
        while self.done:
            step = self.done.pop()
            if step.undo is None:
                continue
            try:
                step.undo()
            except Exception as exc:
                self.log(f"warning: undoing '{step.name}' failed: {exc}")


class BackgroundSteps(threading.Thread):
    """Runs steps on a thread (host I/O while the appliance boots); finish() re-raises."""

    def __init__(self, runner: StepRunner, steps: list[Step]):
        super().__init__(name="osdef-host-steps", daemon=True)
        self.runner = runner
        self.steps = steps
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            self.runner.run(self.steps)
        except BaseException as exc:
            self.error = exc

    def finish(self) -> None:
        """Wait for the steps; raise the error one of them raised."""
        if self.ident is not None:
            self.join()
        if self.error is not None:
            raise self.error

