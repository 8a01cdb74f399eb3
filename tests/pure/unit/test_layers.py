"""The tree's floors: no module of osdef imports one from a higher floor.

Data flows one way (Ganeti env → plan → image → layout → steps), and so do the imports:
the vocabulary and the errors at the bottom, the Ganeti model above them, the stacks that
do the work (stream, images, guest) above that, the pipeline that strings them together,
and the entry points on top.  Every import counts, the ones inside functions too.
"""

import ast
from pathlib import Path

import pytest

OSDEF = Path(__file__).resolve().parents[3] / "osdef"

#: module (or package) → floor; a module takes the floor of its longest listed prefix
#: ("osdef" itself is only the package's __init__: a new top-level module must be listed)
FLOORS = {
    # 0: words, errors and file helpers everything may use
    "osdef": 0, "osdef.errors": 0, "osdef.vocab": 0, "osdef.yamldoc": 0, "osdef.fileutil": 0,
    "osdef.paths": 0, "osdef.launchers": 0, "osdef.fsprofiles": 0,
    # 1: the models: site config, variants, what Ganeti says (environment, OS parameters)
    "osdef.config": 1, "osdef.variants": 1, "osdef.ganeti": 1,
    # 1: the host-side disk layer (open, size, zero, copy, filemaps, on-disk formats)
    "osdef.disk": 1,
    # 2: the stacks that do the work
    "osdef.stream": 2, "osdef.images": 2, "osdef.guest": 2, "osdef.extstorage": 2,
    # 3: create and rename end to end, and the demo that drives them
    "osdef.create": 3, "osdef.demo": 3,
    # 4: entry points
    "osdef.scripts": 4, "osdef.cli": 4,
}

#: (importer, imported) pairs that still run up a floor, each with its reason
ALLOWED: set[tuple[str, str]] = set()


def module_name(path: Path) -> str:
    parts = list(path.relative_to(OSDEF.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(p): p for p in sorted(OSDEF.rglob("*.py"))}


def floor(module: str) -> int | None:
    for prefix in sorted(FLOORS, key=len, reverse=True):
        if module == prefix or (prefix != "osdef" and module.startswith(prefix + ".")):
            return FLOORS[prefix]
    return None


def imported(module: str, path: Path) -> set[str]:
    """The osdef modules `module` imports anywhere in its file."""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[:len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([node.module] if node.module else []))
            for alias in node.names:
                sub = f"{base}.{alias.name}"
                found.add(sub if sub in MODULES else base)
    return {m for m in found if m == "osdef" or m.startswith("osdef.")}


def test_every_module_has_a_floor():
    assert [m for m in MODULES if floor(m) is None] == []


@pytest.mark.parametrize("module", sorted(MODULES))
def test_no_import_runs_up_a_floor(module):
    upward = sorted(f"{target} (floor {floor(target)})" for target in imported(module, MODULES[module])
                    if floor(target) > floor(module) and (module, target) not in ALLOWED)
    assert upward == [], f"{module} (floor {floor(module)}) imports from above"


def test_the_allowed_exceptions_are_still_needed():
    stale = [(m, t) for m, t in ALLOWED if m not in MODULES or t not in imported(m, MODULES[m])]
    assert stale == [], "remove these from ALLOWED"


def test_the_check_sees_function_level_imports():
    source = "def f():\n    from osdef.create.pipeline import create\n"
    tree = ast.parse(source)
    assert any(isinstance(n, ast.ImportFrom) and n.module == "osdef.create.pipeline" for n in ast.walk(tree))
    assert "osdef.create.pipeline" in imported("osdef.scripts.actions", MODULES["osdef.scripts.actions"])


def _cycles() -> list[list[str]]:
    """Every import cycle among osdef's modules (every import counts: in functions, under TYPE_CHECKING)."""
    graph = {m: sorted(t for t in imported(m, p) if t in MODULES and t != m) for m, p in MODULES.items()}
    order, low, on_stack, stack, found = {}, {}, set(), [], []

    def visit(node: str) -> None:  # Tarjan's strongly connected components
        order[node] = low[node] = len(order)
        stack.append(node)
        on_stack.add(node)
        for nxt in graph[node]:
            if nxt not in order:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], order[nxt])
        if low[node] == order[node]:
            component = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                component.append(top)
                if top == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for module in sorted(graph):
        if module not in order:
            visit(module)
    return found


def test_no_module_imports_itself_round_a_circle():
    """Floors inside a package too: the modules of one package form no circle (the old
    guest context → plan → customize → context would fail here)."""
    assert _cycles() == []


def test_the_circle_check_sees_a_circle(monkeypatch):
    fake = {"osdef.a": Path("a.py"), "osdef.b": Path("b.py")}
    graph_sources = {"osdef.a": "from osdef.b import x\n", "osdef.b": "def f():\n    import osdef.a\n"}
    monkeypatch.setattr(Path, "read_text", lambda self, encoding=None: graph_sources[f"osdef.{self.stem}"])
    monkeypatch.setitem(globals(), "MODULES", fake)
    assert _cycles() == [["osdef.a", "osdef.b"]]
