"""The floors hold (docs/architecture.md): every module imports first in a
fresh interpreter, no module imports another in a circle, and the import
contracts of setup.cfg (the layers, the kernel's inner order, acyclic
siblings) are kept."""

from __future__ import annotations

import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

import grimp

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PACKAGES = ("netq", "workers", "shm")
#: modules that do their job when imported (they run the command)
ENTRY_POINTS = frozenset({"netq.__main__"})


def _modules() -> list[str]:
    graph = grimp.build_graph(*PACKAGES, cache_dir=None)
    return sorted(m for m in graph.modules if m.partition(".")[0] in PACKAGES)


def test_every_module_imports_first_in_a_fresh_interpreter():
    """A module that only imports when something else was imported before it
    hides a cycle or a missing import."""
    mods = [m for m in _modules() if m not in ENTRY_POINTS]
    assert len(mods) > 40

    def load(mod: str) -> tuple[str, str]:
        p = subprocess.run(
            [sys.executable, "-c", f"import {mod}"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=120,
        )
        return mod, "" if p.returncode == 0 else (p.stderr.strip().splitlines() or ["?"])[-1]

    with ThreadPoolExecutor(max_workers=4) as pool:
        failed = {m: err for m, err in pool.map(load, mods) if err}
    assert not failed


def _cycles(graph: grimp.ImportGraph, modules: list[str]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    out: list[list[str]] = []
    counter = [0]

    def visit(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in graph.find_modules_directly_imported_by(v):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    sys.setrecursionlimit(max(sys.getrecursionlimit(), 10_000))
    for m in modules:
        if m not in index:
            visit(m)
    return out


def test_no_module_imports_another_in_a_circle():
    graph = grimp.build_graph(*PACKAGES, cache_dir=None, exclude_type_checking_imports=True)
    mods = sorted(m for m in graph.modules if m.partition(".")[0] in PACKAGES)
    assert _cycles(graph, mods) == []


def test_the_cycle_finder_finds_a_cycle():
    """The check above can fail: a graph with a circle is reported."""
    graph = grimp.ImportGraph()
    for a, b in (("p.a", "p.b"), ("p.b", "p.c"), ("p.c", "p.a"), ("p.c", "p.d")):
        graph.add_import(importer=a, imported=b)
    assert _cycles(graph, ["p.a", "p.b", "p.c", "p.d"]) == [["p.a", "p.b", "p.c"]]


def test_import_contracts_are_kept():
    exe = os.path.join(os.path.dirname(sys.executable), "lint-imports")
    p = subprocess.run(
        [exe, os.path.join(ROOT, "setup.cfg"), "--no-cache"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert p.returncode == 0, p.stdout[-3000:]
    assert "0 broken" in p.stdout


def test_the_drawn_import_graph_points_only_down():
    """scripts/import_graph.py (the graph in docs/architecture.md): no arrow
    up a floor, no two nodes that import each other."""
    p = subprocess.run(
        [sys.executable, os.path.join(ROOT, "scripts", "import_graph.py"), "--check"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert p.returncode == 0, p.stderr


def test_the_architecture_doc_shows_the_graph_as_it_is():
    """docs/architecture.md holds the drawing that scripts/import_graph.py
    makes now (regenerate it there when the imports change)."""
    p = subprocess.run(
        [sys.executable, os.path.join(ROOT, "scripts", "import_graph.py")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    with open(os.path.join(ROOT, "docs", "architecture.md")) as f:
        doc = f.read()
    drawn = doc.split("```mermaid\n", 1)[1].split("```", 1)[0]
    assert drawn == p.stdout, "regenerate: python scripts/import_graph.py"
