"""The run order of the customization steps: their numbered position, refined by what they declare.

A step may declare `AFTER` and `BEFORE` (tuples of step names, as snf-image's
tasks declare RUN_AFTER/RUN_BEFORE); `AFTER = ("*",)` means after every other
built-in step.  Without declarations the order is the numbered one (built-in
`NN-name.py` by NN, then the site hooks by file name); declarations only move
a step as far as they need.  An unknown name or a cycle is one GuestError,
raised when the steps load, before create writes anything.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Protocol, TypeVar

from osdef.errors import GuestError

EVERY_BUILTIN = "*"


class Ordered(Protocol):
    """What ordering reads of a step (read-only: steps.Hook is frozen)."""

    @property
    def name(self) -> str: ...
    @property
    def path(self) -> Path: ...
    @property
    def after(self) -> tuple[str, ...]: ...
    @property
    def before(self) -> tuple[str, ...]: ...
    @property
    def site(self) -> bool: ...


S = TypeVar("S", bound=Ordered)


def _edges(steps: Sequence[Ordered]) -> list[set[int]]:
    """preds[i]: the indices that must run before step i."""
    index: dict[str, int] = {}
    for i, step in enumerate(steps):
        index.setdefault(step.name, i)
    known = ", ".join(index)
    preds: list[set[int]] = [set() for _ in steps]

    def find(step: Ordered, word: str, name: str) -> int:
        if name not in index:
            raise GuestError(f"step {step.name} ({step.path}): {word} names unknown step {name!r}"
                             f" (known: {known})")
        return index[name]

    for i, step in enumerate(steps):
        for name in step.after:
            if name == EVERY_BUILTIN:
                preds[i] |= {j for j, other in enumerate(steps)
                             if not other.site and EVERY_BUILTIN not in other.after and j != i}
            else:
                preds[i].add(find(step, "AFTER", name))
        for name in step.before:
            preds[find(step, "BEFORE", name)].add(i)
    return preds


def order(steps: Sequence[S]) -> list[S]:
    """`steps` (in their numbered order) sorted by their declarations.

    Each step in turn, in numbered order, is placed right after the steps it
    must follow that are not placed yet (themselves placed the same way): a
    declaration moves a step, or pulls its predecessors forward, no further
    than it needs."""
    preds = _edges(steps)
    placed: list[int] = []
    done: set[int] = set()
    stack: list[int] = []

    def visit(i: int) -> None:
        if i in done:
            return
        if i in stack:
            cycle = stack[stack.index(i):] + [i]
            raise GuestError("the steps' AFTER/BEFORE declarations form a cycle: "
                             + " → ".join(steps[j].name for j in reversed(cycle)))
        stack.append(i)
        for j in sorted(preds[i]):
            visit(j)
        stack.pop()
        done.add(i)
        placed.append(i)

    for i in range(len(steps)):
        visit(i)
    return [steps[i] for i in placed]
