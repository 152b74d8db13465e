"""The house of DESIGN.md: imports only point down the floors, and no module takes part in a circle.

Every import form counts: ``import gridplan.x``, ``from gridplan.x import y`` (a submodule when ``y``
is one), ``from gridplan import x``, relative imports, imports inside functions and under
``TYPE_CHECKING``, and ``importlib.import_module("gridplan.…")`` with a literal name.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PKG = Path(__file__).resolve().parents[1] / "gridplan"

#: The floors of DESIGN.md, bottom first.  In a list, a room may use the rooms before it on the
#: same floor; in a set the rooms are peers and none may import another.  Every room may use every
#: room of a lower floor.
FLOORS: list[tuple[str, list[str] | set[str]]] = [
    ("ground", ["errors", "settings", "_clock", "_atomic", "_dask", "params", "crs"]),
    ("data", ["layers", "validate", "sample"]),
    ("plan", ["plans", "hexindex", "merge"]),
    ("analyses", {"geocode", "hotspots", "balance", "coverage"}),
    ("faces", ["maps", "store", "api", "cli", "__main__"]),
    ("package", ["testing"]),
]


def _rank() -> dict[str, tuple[int, int | None]]:
    out: dict[str, tuple[int, int | None]] = {}
    for floor, (_, rooms) in enumerate(FLOORS):
        if isinstance(rooms, set):
            out.update(dict.fromkeys(rooms, (floor, None)))
        else:
            out.update({r: (floor, k) for k, r in enumerate(rooms)})
    return out


RANK = _rank()


def module_name(path: Path) -> str:
    rel = path.relative_to(PKG.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


MODULES: dict[str, Path] = {
    module_name(p): p for p in sorted(PKG.rglob("*.py")) if "node_modules" not in p.parts
}


def _target(name: str) -> str | None:
    """The module that an import of *name* loads (the longest existing prefix)."""
    parts = name.split(".")
    while parts:
        cand = ".".join(parts)
        if cand in MODULES:
            return cand
        parts.pop()
    return None


def imports_of(module: str) -> set[str]:
    path = MODULES[module]
    tree = ast.parse(path.read_text(encoding="utf-8"))
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    out: set[str] = set()
    for node in ast.walk(tree):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[: len(anchor) - (node.level - 1)]
                base = ".".join([*anchor, base] if base else anchor)
            for a in node.names:
                sub = f"{base}.{a.name}"
                names.append(sub if sub in MODULES else base)
        elif (
            isinstance(node, ast.Call)
            and getattr(node.func, "attr", getattr(node.func, "id", "")) == "import_module"
            and node.args
            and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, str)
        ):
            names = [node.args[0].value]
        for n in names:
            if n == "gridplan" or n.startswith("gridplan."):
                t = _target(n)
                if t and t != module:
                    out.add(t)
    return out


GRAPH: dict[str, set[str]] = {m: imports_of(m) for m in MODULES}


def room_of(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


@pytest.mark.parametrize("module", sorted(m for m in MODULES if m != "gridplan"))
def test_imports_point_down(module: str) -> None:
    own = room_of(module)
    assert own in RANK, f"{module}: add room {own!r} to a floor in DESIGN.md and FLOORS"
    of, ok = RANK[own]
    for dep in sorted(GRAPH[module]):
        room = room_of(dep)
        if room == own:
            continue
        assert room in RANK, f"{module} imports {dep}, which is on no floor"
        df, dk = RANK[room]
        if df < of:
            continue
        assert df == of, f"{module} ({FLOORS[of][0]} floor) imports up: {dep} ({FLOORS[df][0]} floor)"
        assert ok is not None, f"{module}: peer rooms do not import each other: {dep}"
        assert dk is not None, f"{module}: peer rooms do not import each other: {dep}"
        assert dk < ok, f"{module} imports {dep}, which stands after it on the {FLOORS[of][0]} floor"


def test_no_circle() -> None:
    """Depth-first search for a back edge over the module graph (same room included)."""
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(m: str) -> None:
        state[m] = 1
        stack.append(m)
        for d in sorted(GRAPH[m]):
            if state.get(d) == 1:
                cycle = [*stack[stack.index(d):], d]
                pytest.fail("import circle: " + " -> ".join(cycle))
            if d not in state:
                visit(d)
        stack.pop()
        state[m] = 2

    for m in sorted(GRAPH):
        if m not in state:
            visit(m)


def test_the_graph_sees_every_import_form() -> None:
    """The reader is not blind to the forms that hid circles before (a check of the checker)."""
    assert "gridplan.layers.catalog" in GRAPH["gridplan.layers.read"]
    assert "gridplan.plans" in GRAPH["gridplan.hexindex.lookup"]  # imported under TYPE_CHECKING
    assert "gridplan.crs" in GRAPH["gridplan.validate"]  # ``from gridplan import crs``
    assert "gridplan.cli.merge" in GRAPH["gridplan.cli"]  # ``from gridplan.cli import merge``


#: Size limits of a readable room (STYLE.md): a module past this is two rooms, a function past
#: this wants its steps named as functions of their own.
MAX_MODULE_LINES = 600
MAX_FUNCTION_LINES = 80


def _function_lengths(path: Path) -> list[tuple[str, int]]:
    out = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            body = node.body
            first = body[0]
            has_doc = isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant) and len(body) > 1
            start = body[1].lineno if has_doc else first.lineno
            out.append((node.name, (node.end_lineno or start) - start + 1))
    return out


#: Debt being paid off (issue 11): rooms that were past the limits when the limits came in, with
#: the size they had then.  A listed room may only shrink; once it is within the limits it must
#: leave this list (the test says so), and no room may join it.
OVERSIZED: dict[str, tuple[int | None, dict[str, int]]] = {
}


@pytest.mark.parametrize("module", sorted(MODULES))
def test_rooms_stay_readable(module: str) -> None:
    path = MODULES[module]
    n = len(path.read_text(encoding="utf-8").splitlines())
    debt_lines, debt_funcs = OVERSIZED.get(module, (None, {}))
    limit = max(MAX_MODULE_LINES, debt_lines or 0)
    assert n <= limit, f"{module}: {n} lines; split it into rooms of at most {MAX_MODULE_LINES}"
    lengths = dict(_function_lengths(path))
    long = [
        f"{name} ({k} lines)"
        for name, k in lengths.items()
        if k > max(MAX_FUNCTION_LINES, debt_funcs.get(name, 0))
    ]
    limit_text = f"functions over {MAX_FUNCTION_LINES} lines (docstring excluded)"
    assert not long, f"{module}: {limit_text}: {', '.join(long)}"
    if module in OVERSIZED:
        paid = (debt_lines is None or n <= MAX_MODULE_LINES) and all(
            lengths.get(name, 0) <= MAX_FUNCTION_LINES for name in debt_funcs
        )
        assert not paid, f"{module} is within the limits now: take it off OVERSIZED"
        stale = [name for name in debt_funcs if lengths.get(name, 0) <= MAX_FUNCTION_LINES]
        assert not stale, f"{module}: {', '.join(stale)} within the limit now: take off OVERSIZED"
        if debt_lines is not None:
            assert n > MAX_MODULE_LINES, f"{module}: {n} lines now: set its OVERSIZED line count to None"
