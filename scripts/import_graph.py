#!/usr/bin/env python3
"""Draw the import graph of netq's packages, floor by floor, as Mermaid.

    python scripts/import_graph.py            # the graph (docs/architecture.md holds it)
    python scripts/import_graph.py --check    # exit 1 if an arrow points up a floor

Each node is a package (or a top-level module) of the three root packages,
collapsed to the depth that shows the floors and the kernel's parts; an
arrow A --> B means some module of A imports some module of B (imports
under ``if TYPE_CHECKING:`` are left out: they do not run). Floors are
ranked as in setup.cfg's contract; every arrow must point to the same or a
lower floor, and no two nodes may import each other.
"""

from __future__ import annotations

import argparse
import os
import sys

import grimp

#: draw this checkout's packages, not an installed copy's
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if sys.path[0] != ROOT:
    sys.path.insert(0, ROOT)

ROOTS = ("netq", "workers", "shm")
#: floor of a node (higher imports lower), as setup.cfg's "floors" contract
FLOORS = (
    ("netq.run", 5),
    ("netq.__main__", 5),
    ("netq.app", 4),
    ("workers", 3),
    ("netq.machine", 2),
    ("netq.kernel", 1),
    ("shm", 0),
)
#: packages shown with their subpackages / modules as separate nodes
EXPAND = ("netq.app", "netq.kernel", "netq.machine", "workers", "shm", "netq")
#: modules drawn on their own although their package is collapsed: dev.c sits
#: above net/sched, which uses the rest of net/core (netdevice.h, sock, skbuff)
SPLIT = ("netq.kernel.core.dev",)


def node_of(module: str) -> str:
    """The node a module is drawn in: one level below the deepest package
    of EXPAND that contains it."""
    if module in SPLIT:
        return module
    parts = module.split(".")
    for depth in range(len(parts) - 1, 0, -1):
        if ".".join(parts[:depth]) in EXPAND:
            return ".".join(parts[: depth + 1])
    return module


def floor_of(node: str) -> int:
    for prefix, floor in FLOORS:
        if node == prefix or node.startswith(prefix + "."):
            return floor
    return 6  # netq/__init__.py


def edges() -> set[tuple[str, str]]:
    graph = grimp.build_graph(*ROOTS, cache_dir=None, exclude_type_checking_imports=True)
    out = set()
    for m in graph.modules:
        if m.partition(".")[0] not in ROOTS:
            continue
        for imp in graph.find_modules_directly_imported_by(m):
            if imp.partition(".")[0] not in ROOTS:
                continue
            a, b = node_of(m), node_of(imp)
            if a != b and not (a.startswith(b + ".") or b.startswith(a + ".")):
                out.add((a, b))
    return out


def problems(es: set[tuple[str, str]]) -> list[str]:
    bad = [f"{a} --> {b} points up a floor" for a, b in sorted(es) if floor_of(a) < floor_of(b)]
    bad += [f"{a} <--> {b} import each other" for a, b in sorted(es) if a < b and (b, a) in es]
    return bad


def mermaid(es: set[tuple[str, str]]) -> str:
    nodes = sorted({n for e in es for n in e}, key=lambda n: (-floor_of(n), n))
    ident = {n: n.replace(".", "_") for n in nodes}
    lines = ["graph TD"]
    names = {5: "entry", 4: "netq.app", 3: "workers", 2: "netq.machine", 1: "netq.kernel", 0: "shm"}
    for floor in sorted({floor_of(n) for n in nodes}, reverse=True):
        lines.append(f"  subgraph floor{floor}[{names.get(floor, 'netq')}]")
        lines += [f"    {ident[n]}[{n}]" for n in nodes if floor_of(n) == floor]
        lines.append("  end")
    lines += [f"  {ident[a]} --> {ident[b]}" for a, b in sorted(es)]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--check", action="store_true", help="only check: exit 1 on an upward arrow")
    args = p.parse_args(argv)
    es = edges()
    bad = problems(es)
    if not args.check:
        print(mermaid(es))
    for b in bad:
        print(f"import_graph: {b}", file=sys.stderr)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
