"""Plots of a load study (:mod:`netq.app.sweep`), from its JSON.

    python scripts/plot.py DIR/STUDY.json [--out PNG]

One PNG per study: a row of panels per ``bounce_ns`` value, one line per
series (contention: strategy x lock fairness; xps: XPS mode x TX queues;
queues: XPS mode; generations: strategy x qdisc x lock waiting, the colour
the strategy, the line the qdisc and lock waiting).  Each marker is the
median over the repetitions that ended ``ok``; the bar spans their minimum
to maximum; a red ring marks a point where some repetition did not end ok, a
cross on the x axis a point where none did.  generations adds a panel of
defer / busylock delivered pps (the JSON's ``ratios``: ratios of medians)
per qdisc and lock waiting, with lines at the kernel's ratio (the JSON's
``kernel``, :data:`netq.app.figures.KERNEL_DEFER`) and at 1 (parity).  The grey band is where the
emulated CPUs plus the NIC outnumber the host's cores (time-sliced: waits
include other processes' slices).

Needs matplotlib (the ``plot`` extra), imported when a plot is drawn: it is
optional and heavy, so importing this module (and the sweep) does not need it.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
from typing import Any

from netq.app.figures import KERNEL_DEFER

from .studies import CONTENTION_SERIES, PROFILES, series_of
from .table import _pair

#: contention: the series in the study's order (what ran, studies.series_of)
CONTENTION_ORDER = tuple(
    series_of(s, p, q, PROFILES[p].pfifo_fast_nolock) for s, p, q in CONTENTION_SERIES
)

#: per study: x key and label, series keys, panels (figure key, axis label, scale, log y)
#: the xps and queues studies plot the same figures
_QUEUE_PANELS = (
    ("pps", "delivered kpps", 1e-3, False),
    ("cpu_ns_per_packet", "CPU us per delivered packet", 1e-3, False),
    ("acq_bounces_per_packet", "queue-lock acq-bounces per packet", 1, False),
    ("contentions_per_packet", "queue-lock contentions per packet", 1, False),
    ("completion_locality", "completions on the sending CPU", 1, False),
)

SPECS: dict[str, dict[str, Any]] = {
    "contention": {
        "x": ("cpus", "senders (emulated CPUs, 1 TX queue)"),
        "series": ("series", "lock_fairness"),
        "panels": (
            ("pps", "delivered kpps", 1e-3, False),
            ("cpu_ns_per_packet", "CPU us per delivered packet", 1e-3, True),
            (
                "owner_ahead_per_relock",
                "CPUs ahead of the qdisc owner\nper root_lock re-take",
                1,
                False,
            ),
            ("ctx_switches_per_packet", "context switches per packet", 1, True),
        ),
    },
    "xps": {
        "x": ("cpus", "emulated CPUs"),
        "series": ("xps", "tx_queues"),
        "panels": _QUEUE_PANELS,
    },
    "queues": {
        "x": ("tx_queues", "TX queues (2 CPUs)"),
        "series": ("xps",),
        "panels": _QUEUE_PANELS,
    },
    "generations": {
        "x": ("cpus", "senders (emulated CPUs, 1 TX queue)"),
        "series": ("series", "qdisc", "lock_wait"),
        "legend_in": 3.0,  # inches beside the panels for the legend (default 1.8)
        "panels": (
            ("pps", "delivered kpps", 1e-3, False),
            ("cpu_ns_per_packet", "CPU us per delivered packet", 1e-3, True),
            # not a row figure: drawn from the JSON's "ratios" (:func:`_ratio_panel`)
            ("pps_ratio", "6.19 / 6.18\ndelivered pps", 1, False),
        ),
    },
}

COLORS = {
    "rootlock": "C3",
    "busylock": "C0",
    "nolock": "C2",
    "defer": "C1",
    # contention and generations series (studies.series_of)
    "rootlock 3.13 (what-if)": "C3",
    "busylock 3.13": "C0",
    "nolock 6.18": "C2",
    "nolock 6.19": "C4",
    "busylock 6.18 pfifo": "C9",
    "defer 6.19 pfifo": "C1",
    "nolock 6.18 pfifo_fast": "C2",
    "nolock 6.19 pfifo_fast": "C4",
    "busylock 6.18 fq": "C0",
    "defer 6.19 fq": "C1",
    "1:1": "C0",
    "none": "C3",
    "shared": "C2",
}
STYLES = {"fifo": ("-", "o"), "unfair": ("--", "s"), 2: ("-", "o"), 4: ("--", "s")}
#: generations: line and marker per (qdisc, lock waiting); the colour is the strategy's
GEN_STYLES = {
    ("pfifo_fast", "adaptive"): ("-", "o"),
    ("pfifo_fast", "spin"): (":", "o"),
    ("pfifo", "adaptive"): ("-", "^"),
    ("pfifo", "spin"): (":", "^"),
    ("fq", "adaptive"): ("--", "s"),
    ("fq", "spin"): ("-.", "s"),
}
GEN_ORDER = {
    "busylock": 0,
    "defer": 1,
    "pfifo_fast": 0,
    "pfifo": 1,
    "fq": 2,
    "adaptive": 0,
    "spin": 1,
}
RATIO_COLOR = "C2"


def _import_pyplot():
    try:
        import matplotlib
    except ImportError:
        raise SystemExit(
            "plot: matplotlib is not installed; install the plot extra: pip install '.[plot]'"
        ) from None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _series_label(keys: tuple[str, ...], vals: tuple) -> str:
    out = []
    for k, v in zip(keys, vals):
        if k == "xps":
            out.append(f"xps {v}" if v != "none" else "no xps (hash)")
        elif k == "tx_queues":
            out.append(f"{v} txq")
        elif k == "lock_wait":
            out.append(f"{v} waiting")
        elif k == "qdisc" and out and str(v) in out[0].split():
            continue  # the series label names it already
        else:
            out.append(str(v))
    return " ".join(out)


def _style(study: str, s: tuple) -> tuple[str, str]:
    """Line style and marker of a series."""
    if study == "generations":
        return GEN_STYLES.get(tuple(s[1:]), ("-", "o"))
    return STYLES.get(s[-1], ("-", "o")) if len(s) > 1 else ("-", "o")


def _ratio_panel(ax, doc: dict, bounce: int, handles: dict[str, Any]) -> None:
    """generations: defer / busylock pps per (qdisc, lock waiting) against
    senders, from the JSON's ``ratios``, with the kernel's ratio and 1."""
    rs = [r for r in doc.get("ratios", []) if r["bounce_ns"] == bounce]
    groups: dict[tuple, list[dict]] = {}
    for r in rs:
        groups.setdefault((r["qdisc"], r["lock_wait"]), []).append(r)
    top = 0.0
    for key in sorted(groups, key=lambda k: tuple((GEN_ORDER.get(x, 9), str(x)) for x in k)):
        pts = sorted(groups[key], key=lambda r: r["cpus"])
        ls, mk = GEN_STYLES.get(key, ("-", "o"))
        label = f"{_pair(key[0])}, {key[0]}, {key[1]} waiting"
        (h,) = ax.plot(
            [r["cpus"] for r in pts],
            [r["pps_ratio"] for r in pts],
            color=RATIO_COLOR,
            linestyle=ls,
            marker=mk,
            markersize=4,
            linewidth=1.4,
            label=label,
        )
        handles.setdefault(label, h)
        top = max([top] + [r["pps_ratio"] for r in pts])
    kernel = doc.get("kernel", {})
    kr = kernel.get("pps_ratio", KERNEL_DEFER["pps_ratio"])
    label = f"kernel {kr:g}x ({kernel.get('commit', KERNEL_DEFER['commit'])}, fq)"
    handles.setdefault(label, ax.axhline(kr, color="C3", linestyle="--", linewidth=1.1))
    handles.setdefault("parity (1x)", ax.axhline(1.0, color="0.35", linestyle=":", linewidth=1.1))
    ax.set_ylim(0, max(kr, top) * 1.15)


def plot_study(doc: dict, path: str) -> str:
    """Draw ``doc`` (a sweep JSON) into ``path``; returns ``path``."""
    study = doc["study"]
    if study not in SPECS:
        return plot_points(doc, path)
    plt = _import_pyplot()
    spec = SPECS[study]
    xkey, xlabel = spec["x"]
    skeys = spec["series"]
    panels = spec["panels"]
    rows = doc["rows"]
    bounces = sorted({r["bounce_ns"] for r in rows}) or [0]
    cores = len(doc["machine"]["host_cores"])
    width = 4.4 * len(panels) + spec.get("legend_in", 1.8)
    fig, axes = plt.subplots(
        len(bounces), len(panels), squeeze=False, figsize=(width, 3.9 * len(bounces) + 0.6)
    )
    # (bounce, series, x) -> rows
    groups: dict[tuple, list[dict]] = {}
    for r in rows:
        groups.setdefault((r["bounce_ns"], tuple(r[k] for k in skeys), r[xkey]), []).append(r)
    series = sorted({k[1] for k in groups}, key=lambda s: tuple(str(x) for x in s))
    if study == "contention":
        order = {lab: i for i, lab in enumerate(CONTENTION_ORDER)}
        series.sort(key=lambda s: (order.get(s[0], 9), s[1]))
    elif study == "generations":
        series.sort(key=lambda s: tuple((GEN_ORDER.get(x, 9), str(x)) for x in s))
    xs_all = sorted({k[2] for k in groups})
    # matplotlib is the optional plot extra: imported when a plot is drawn (_import_pyplot)
    from matplotlib.ticker import FormatStrFormatter, LogLocator, NullFormatter
    from matplotlib.transforms import blended_transform_factory

    handles: dict[str, Any] = {}
    for i, b in enumerate(bounces):
        for j, (fk, flabel, scale, logy) in enumerate(panels):
            ax = axes[i][j]
            at_bottom = blended_transform_factory(ax.transData, ax.transAxes)
            if fk == "pps_ratio":
                _ratio_panel(ax, doc, b, handles)
            for s in [] if fk == "pps_ratio" else series:
                if fk.startswith("owner_") and str(s[0]).startswith("nolock"):
                    continue  # TCQ_F_NOLOCK: the owner never re-takes root_lock
                xs, ys, lo, hi, bad, none_ok = [], [], [], [], [], []
                for x in xs_all:
                    rs = groups.get((b, s, x))
                    if not rs:
                        continue
                    vals = [r[fk] for r in rs if r["status"] == "ok" and r.get(fk) is not None]
                    if any(r["status"] != "ok" for r in rs):
                        bad.append(x)
                    if not any(r["status"] == "ok" for r in rs):
                        none_ok.append(x)
                    if not vals:
                        continue
                    m = statistics.median(vals) * scale
                    xs.append(x)
                    ys.append(m)
                    lo.append(m - min(vals) * scale)
                    hi.append(max(vals) * scale - m)
                color = COLORS.get(s[0])
                ls, mk = _style(study, s)
                label = _series_label(skeys, s)
                if xs:
                    h = ax.errorbar(
                        xs,
                        ys,
                        yerr=[lo, hi],
                        color=color,
                        linestyle=ls,
                        marker=mk,
                        markersize=4,
                        capsize=2,
                        linewidth=1.4,
                        label=label,
                    )
                    handles.setdefault(label, h)
                for x in bad:
                    if x in xs:
                        ax.plot(
                            [x],
                            [ys[xs.index(x)]],
                            "o",
                            markersize=11,
                            markerfacecolor="none",
                            markeredgecolor="red",
                            markeredgewidth=1.2,
                        )
                for x in none_ok:  # no run of this point ended ok: a cross on the axis
                    ax.plot(
                        [x],
                        [0.03],
                        marker="x",
                        color=color,
                        markersize=9,
                        markeredgewidth=2,
                        transform=at_bottom,
                        clip_on=False,
                    )
            ax.set_xscale("log", base=2)
            ax.set_xticks(xs_all)
            ax.set_xticklabels([str(x) for x in xs_all])
            ax.xaxis.set_minor_formatter(NullFormatter())
            if xkey == "cpus" and xs_all and max(xs_all) >= cores:
                ax.axvspan(cores * 0.92, max(xs_all) * 1.15, color="0.88", zorder=0)
            if logy:
                ax.set_yscale("log")
                ax.yaxis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
                ax.yaxis.set_major_formatter(FormatStrFormatter("%g"))
                ax.yaxis.set_minor_formatter(NullFormatter())
            elif fk == "completion_locality":
                ax.set_ylim(-0.05, 1.05)
            elif fk == "pps_ratio":
                pass  # _ratio_panel set it
            else:
                ax.set_ylim(bottom=0)
            ax.set_xlabel(xlabel)
            ax.set_ylabel(flabel)
            title = f"bounce_ns {b}"
            if fk.startswith("owner_") and study == "contention":
                title += " (nolock: no root_lock, not shown)"
            if fk == "pps_ratio":
                title += ": ratio of medians"
            ax.set_title(title, fontsize=9)
            ax.grid(True, alpha=0.3)
    fig.legend(
        list(handles.values()),
        list(handles),
        loc="center right",
        fontsize=8,
        title="x on the axis: no run ok",
        title_fontsize=7,
    )
    p = doc["parameters"]
    fig.suptitle(
        f"netq {study}: {doc['summary']}\nmedian of {p['repeat']} run(s) x {p['duration_s']:g} s per "
        f"point (bars: min-max; red ring: a run not ok; grey: CPUs + NIC > {cores} host cores)",
        fontsize=10,
    )
    fig.tight_layout(rect=(0, 0, 1 - (spec.get("legend_in", 1.8) + 0.1) / width, 0.93))
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path


#: a file study's panels: (figure, label, scale)
POINT_PANELS = (("pps", "delivered kpps", 1e-3), ("cpu_ns_per_packet", "CPU us / packet", 1e-3))


def plot_points(doc: dict, path: str) -> str:
    """A file study (``--file``): one bar per point (its axes' values), the
    median of its runs, whiskers min-max; a hatched bar where a run was not ok."""
    plt = _import_pyplot()
    ms = doc["medians"]
    labels = [m["series"] for m in ms]
    height = 1.2 + 0.28 * max(len(ms), 4)
    fig, axes = plt.subplots(
        1, len(POINT_PANELS), squeeze=False, figsize=(5.2 * len(POINT_PANELS), height)
    )
    by_series: dict[str, list[dict]] = {}
    for r in doc["rows"]:
        by_series.setdefault(r["series"], []).append(r)
    for ax, (fk, flabel, scale) in zip(axes[0], POINT_PANELS):
        for i, lab in enumerate(labels):
            rs = by_series.get(lab, [])
            vals = [r[fk] * scale for r in rs if r["status"] == "ok" and r.get(fk) is not None]
            if not vals:
                ax.text(0, i, "  no run ok", va="center", fontsize=8, color="red")
                continue
            m = statistics.median(vals)
            bad = any(r["status"] != "ok" for r in rs)
            ax.barh(
                i,
                m,
                xerr=[[m - min(vals)], [max(vals) - m]],
                color="C0",
                hatch="//" if bad else None,
                edgecolor="red" if bad else "C0",
                capsize=2,
            )
        ax.set_yticks(range(len(labels)))
        ax.set_yticklabels(labels if ax is axes[0][0] else [""] * len(labels), fontsize=8)
        ax.invert_yaxis()
        ax.set_xlabel(flabel)
        ax.grid(True, axis="x", alpha=0.3)
    p = doc["parameters"]
    clock = {r.get("clock") for r in doc["rows"]} or {"wall"}
    fig.suptitle(
        f"netq {doc['study']}: {doc['summary']}\nmedian of {p['repeat']} run(s) x "
        f"{p['duration_s']:g} {'virtual ' if clock == {'virtual'} else ''}s per point "
        "(whiskers: min-max; hatched red: a run not ok)",
        fontsize=9,
    )
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="plot.py", description="redraw a sweep's PNG from its JSON")
    ap.add_argument("json", help="DIR/STUDY.json written by scripts/sweep.py")
    ap.add_argument("--out", help="PNG path (default: beside the JSON)")
    a = ap.parse_args(argv)
    try:
        with open(a.json) as f:
            doc = json.load(f)
    except (OSError, ValueError) as e:
        print(f"plot: error: cannot read {a.json}: {e}", file=sys.stderr)
        return 2
    if doc.get("study") not in SPECS:
        print(
            f"plot: error: {a.json} is not a sweep JSON (study {doc.get('study')!r})",
            file=sys.stderr,
        )
        return 2
    out = a.out or os.path.splitext(a.json)[0] + ".png"
    print(plot_study(doc, out))
    return 0
