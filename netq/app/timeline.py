"""A traced run's timeline as a picture (``--timeline PATH.png``): one row
per emulated CPU over a short window, coloured by what the CPU was doing
with which lock — holding it (solid), waiting for it (pale, hatched) — and
grey while it slept for send-buffer space; ticks above a row mark its qdisc
runs.  The busylock effect shows at a glance: with rootlock every CPU's row
is mostly pale root_lock; with busylock at most one waits for root_lock
while the rest wait on busylock.
"""

from __future__ import annotations

from collections import defaultdict

import numpy as np

from netq.kernel import tracepoints as tp
from netq.machine.tracedata import TraceData

#: the lock classes drawn, by the last word of a lock's name, and their colour
CLASS_COLORS = {
    "root_lock": "C3",
    "busylock": "C0",
    "_xmit_lock": "C2",
    "seqlock": "C1",
    "producer_lock": "C4",
}
OTHER_COLOR = "C7"
SLEEP_COLOR = "0.8"
#: the window drawn when none is given: this long, from the middle of the
#: measured window
DEFAULT_WINDOW_NS = 2_000_000


def lock_class(name: str) -> str:
    return name.rsplit(" ", 1)[-1]


def spans(t: TraceData, p: int) -> dict[tuple[str, str], list[tuple[int, int]]]:
    """Participant ``p``'s intervals: (what, lock class) -> [(start, end)],
    what being "hold", "wait" or "sleep"."""
    out: dict[tuple[str, str], list[tuple[int, int]]] = defaultdict(list)
    since: dict[tuple[str, int], int] = {}
    for ts, kind, a, _ in t.events[p].tolist():
        if kind == tp.LOCK_CONTENTION_BEGIN:
            since[("wait", a)] = ts
        elif kind == tp.LOCK_CONTENTION_END and ("wait", a) in since:
            out[("wait", lock_class(t.locks[a]))].append((since.pop(("wait", a)), ts))
        elif kind == tp.LOCK_ACQUIRED:
            since[("hold", a)] = ts
        elif kind == tp.LOCK_RELEASED and ("hold", a) in since:
            out[("hold", lock_class(t.locks[a]))].append((since.pop(("hold", a)), ts))
        elif kind == tp.WMEM_SLEEP:
            since[("sleep", 0)] = ts
        elif kind == tp.WMEM_WAKE and ("sleep", 0) in since:
            out[("sleep", "")].append((since.pop(("sleep", 0)), ts))
    return out


def draw(t: TraceData, path: str, start: int | None = None, length: int = DEFAULT_WINDOW_NS) -> str:
    """Draw CPUs' rows over [start, start + length) (default: from the middle
    of the measured window) into ``path``; returns ``path``."""
    # matplotlib is the optional plot extra's; loaded only to draw
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Patch

    if start is None:
        # the middle of the measured window, or of the part every CPU's log
        # still covers when a log filled up (it keeps its first events)
        last = min((int(ev[-1, 0]) for ev in t.events[: t.ncpus] if len(ev)), default=t.t_stop)
        start = (t.t_go + min(t.t_stop, last)) // 2 - length // 2
    end = start + length
    fig, ax = plt.subplots(figsize=(12, 0.6 * t.ncpus + 1.6))
    seen: set[tuple[str, str]] = set()
    for cpu in range(t.ncpus):
        y = t.ncpus - 1 - cpu
        for (what, cls), ivs in sorted(spans(t, cpu).items()):
            bars = [
                ((max(a, start) - start) / 1e3, (min(b, end) - max(a, start)) / 1e3)
                for a, b in ivs
                if b > start and a < end
            ]
            if not bars:
                continue
            seen.add((what, cls))
            color = SLEEP_COLOR if what == "sleep" else CLASS_COLORS.get(cls, OTHER_COLOR)
            if what == "hold":
                ax.broken_barh(bars, (y - 0.35, 0.7), facecolors=color)
            elif what == "wait":
                ax.broken_barh(
                    bars,
                    (y - 0.25, 0.5),
                    facecolors=color,
                    alpha=0.35,
                    hatch="///",
                    edgecolor=color,
                )
            else:
                ax.broken_barh(bars, (y - 0.15, 0.3), facecolors=color)
        ev = t.events[cpu]
        runs = ev[(ev[:, 1] == tp.QDISC_RUN_BEGIN) & (ev[:, 0] >= start) & (ev[:, 0] < end)]
        if len(runs):
            ax.plot((runs[:, 0] - start) / 1e3, np.full(len(runs), y + 0.42), "|", color="k", ms=6)
    ax.set_yticks(range(t.ncpus), [f"cpu{c}" for c in reversed(range(t.ncpus))])
    ax.set_xlim(0, length / 1e3)
    ax.set_ylim(-0.7, t.ncpus - 0.3)
    ax.set_xlabel(
        f"µs from {(start - t.t_go) / 1e6:.3f} ms after the window began ({t.clock} clock)"
    )
    legend: list = []
    for what, cls in sorted(seen):
        color = SLEEP_COLOR if what == "sleep" else CLASS_COLORS.get(cls, OTHER_COLOR)
        label = "sleeping for send-buffer space" if what == "sleep" else f"{what} {cls}"
        legend.append(
            Patch(
                facecolor=color,
                alpha=0.35 if what == "wait" else 1,
                hatch="///" if what == "wait" else None,
                label=label,
            )
        )
    legend.append(plt.Line2D([], [], marker="|", color="k", ls="", label="qdisc run"))
    ax.legend(handles=legend, loc="upper center", bbox_to_anchor=(0.5, -0.22), ncol=4, fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
