"""The shape the create side was brought to stays: short functions, a guest layer of editors only."""

from __future__ import annotations

import ast

from tests.conftest import REPO

OSDEF = REPO / "osdef"
MAX_FUNCTION_LINES = 60
MAX_GUEST_LINES = 2500


def test_no_function_is_longer_than_a_screen():
    long = []
    for path in sorted(OSDEF.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                lines = (node.end_lineno or node.lineno) - node.lineno + 1
                if lines > MAX_FUNCTION_LINES:
                    long.append(f"{path.relative_to(REPO)}:{node.lineno} {node.name} ({lines} lines)")
    assert not long, "split these: " + "; ".join(long)


def test_the_guest_layer_stays_small():
    lines = sum(len(p.read_text().splitlines()) for p in (OSDEF / "guest").rglob("*.py"))
    assert lines < MAX_GUEST_LINES, f"osdef/guest/ has {lines} lines: does orchestration belong in osdef/create/?"
