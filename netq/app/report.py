"""The text report of a run, in the formats kernel engineers read every day:
``tc -s qdisc show``, ``ethtool -S``, ``/proc/lock_stat``, dmesg.

Everything here renders the result dict (:mod:`netq.machine.result`); nothing reads
shared memory, so a saved JSON can be rendered again.
"""

from __future__ import annotations

import textwrap
from collections.abc import Mapping, Sequence
from typing import Any

from .figures import ANCHORS, DEFER_KERNEL_LINE


def wrap(s: str, width: int = 96) -> str:
    return "\n".join(textwrap.wrap(s, width))


def _si(x: float) -> str:
    if x is None:
        return "-"
    for div, unit in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(x) >= div:
            return f"{x / div:.2f}{unit}"
    return f"{x:.0f}"


def _ns(x) -> str:
    if x is None:
        return "-"
    if x >= 1e9:
        return f"{x / 1e9:.2f} s"
    if x >= 1e6:
        return f"{x / 1e6:.2f} ms"
    if x >= 1e3:
        return f"{x / 1e3:.1f} us"
    return f"{x:.0f} ns"


def derived(res: Mapping[str, Any]) -> dict:
    """Per-packet figures the comparisons use."""
    dw = max(res.get("delivered_in_window") or res.get("delivered") or 0, 1)
    locks = res.get("locks", [])
    qlocks = [r for r in locks if r["name"].endswith(("root_lock", "_xmit_lock"))]
    acqb = sum(r["acq_bounces"] for r in qlocks)
    con = sum(r["contentions"] for r in qlocks)
    loc = sum(q["completions_local"] for q in res.get("queues", []))
    rem = sum(q["completions_remote"] for q in res.get("queues", []))
    m = res.get("mechanism", {})
    return {
        "pps": res.get("pps"),
        "cpu_ns_per_packet": res.get("cpu_ns_per_packet"),
        "acq_bounces_per_packet": acqb / dw,
        "contentions_per_packet": con / dw,
        "completion_locality": loc / (loc + rem) if loc + rem else None,
        "owner_ahead_per_relock": m.get("owner_ahead_per_relock"),
        "owner_wait_ns_per_relock": m.get("owner_wait_ns_per_relock"),
        "packets_per_qdisc_run": m.get("packets_per_qdisc_run"),
        "busylock_taken": m.get("busylock_taken"),
        "softirq_restarts_per_packet": (m.get("softirq_restarts") or 0) / dw,
        "softirq_deferred_per_packet": (m.get("softirq_deferred") or 0) / dw,
        "ctx_switches_per_packet": m.get("ctx_switches_per_packet"),
        "xmit_recursion_max": m.get("xmit_recursion_max"),
        "xmit_recursion_cut": m.get("xmit_recursion_cut"),
        "recursion_limit": res["setup"]["profile"]["recursion_limit"],
        **{f"drops_{k}": v for k, v in res.get("drops", {}).items()},
        **_top_lock(locks),
        "projected_pps": (res.get("projection") or {}).get("projected_pps"),
        "anchor": _anchor(res),
    }


def _top_lock(locks: list[dict]) -> dict:
    """The lock with the most wait time (lock_stat's usual sort key)."""
    if not locks:
        return {"top_lock": None, "top_lock_wait_ns": None}
    top = max(locks, key=lambda r: r["waittime_total_ns"])
    if not top["waittime_total_ns"]:
        return {"top_lock": "none contended", "top_lock_wait_ns": 0}
    name = top["name"].split(" ")[-1]
    return {"top_lock": name, "top_lock_wait_ns": top["waittime_total_ns"]}


def _anchor(res: Mapping[str, Any]) -> str | None:
    return ANCHORS.get(res.get("label", ""))


def _fmt(key: str, v) -> str:
    if v is None:
        return "-"
    if key in ("pps", "projected_pps"):
        return _si(v)
    if key.endswith(("_ns_per_packet", "wait_ns_per_relock", "wait_ns")):
        return _ns(v)
    if key == "completion_locality":
        return f"{100 * v:.0f}%"
    if isinstance(v, float):
        return f"{v:.3f}" if v < 10 else f"{v:.1f}"
    return str(v)


def setup_block(res: Mapping[str, Any]) -> list[str]:
    s = res["setup"]
    lines = ["Setup"]
    cmap = ", ".join(f"cpu{i}->core{c}" for i, c in enumerate(s["cpu_map"]))
    lines.append(
        f"  emulated CPUs {s['cpus']} ({cmap}); NIC on core {s['nic_core']}; "
        f"host cores {len(s['host_cores'])}"
    )
    if s["shared_cores"]:
        lines.append(
            f"  NOTE: {s['processes']} busy processes share {len(s['host_cores'])} cores: "
            "emulated CPUs are time-sliced, so waits include other processes' slices"
        )
    p = s["profile"]
    lk = s["lock"]
    lines.append(
        f"  profile {p['name']} (recursion limit {p['recursion_limit']}, dev_tx_weight "
        f"{p['dev_tx_weight']}, tx hash {p['tx_hash']}); locked qdiscs: {s['strategy']}; "
        f"pfifo_fast {'TCQ_F_NOLOCK' if s.get('pfifo_fast_nolock') else 'locked'}"
    )
    if s.get("what_if"):
        lines.append("  WHAT-IF (no kernel has this): " + "; ".join(s["what_if"]))
    lines.append(
        f"  locks: {lk['fairness']}, {lk['waiting']} (spin {lk['spin_ns'] // 1000} us"
        f"{', yield while spinning' if lk['yield_spin'] else ''}) - {lk['why']}"
    )
    if s.get("clock") == "virtual":
        vc = s.get("vcosts") or {}
        lines.append(
            f"  clock: VIRTUAL (slack {s['slack_ns']} ns; figures are the emulated machine's, "
            f"era {vc.get('era')} prices in ns: "
            + ", ".join(f"{k[:-3]} {v}" for k, v in vc.items() if k != "era")
            + ")"
        )
    else:
        lines.append("  clock: wall (every figure is the host's time)")
    c = s["costs"]
    if any(c.values()) and s.get("clock") != "virtual":
        lines.append("  emulated costs: " + ", ".join(f"{k} {v}" for k, v in c.items() if v))
    if s.get("nic"):
        lines.append(
            f"  NIC: batches of up to {s['nic']['batch']} per ring, interrupt moderation "
            f"{s['nic']['coalesce_us']} us (tx-usecs)"
        )
    pl = s.get("platform") or {}
    if pl:
        lines.append("  platform: " + ", ".join(f"{k} {v}" for k, v in pl.items()))
    for loop in s.get("device_loops", []):
        lines.append(
            "  device loop: "
            + " -> ".join(loop + loop[:1])
            + " (legal: xmit_recursion or the xmit_lock_owner test cuts it)"
        )
    for d in s["devices"]:
        if d["kind"] == "phys":
            xps = {q: m for q, m in d["xps"].items() if m.strip("0,")}
            rxqs = {q: m for q, m in d.get("xps_rxqs", {}).items() if m.strip("0,")}
            lines.append(
                f"  {d['name']}: {d['tx_queues']} TX queues ({d['real_num_tx_queues']} real), "
                f"ring {d['ring_size']}, txqueuelen {d['tx_queue_len']}, line "
                f"{_si(d['line_rate_bps'])}bit/s, irq cpus {d['irq_cpus']}"
                + (f", xps {xps}" if xps else ", no xps")
                + (f", xps_rxqs {rxqs} ({d['rx_queues']} RX queues)" if rxqs else "")
            )
        else:
            lines.append(
                f"  {d['name']}: {d['kind']} on {d['lower']}{' (LLTX)' if d['lltx'] else ''}"
            )
    return lines


def text(res: Mapping[str, Any]) -> str:
    out = []
    label = res.get("label") or res.get("name", "")
    st = res["status"]
    out += setup_block(res)
    out.append("")
    vt = res.get("vt")
    if vt:  # a virtual window is milliseconds of the emulated machine's time
        window = f"{res['window_s'] * 1e3:.3f} ms virtual window"
        if vt.get("window") == "packets":
            window += " to the budget's last wire finish"
    else:
        window = f"{res['window_s']:.2f} s window"
    out.append(
        f"Throughput ({window}): delivered {_si(res['pps'])} pps, "
        f"{_ns(res['cpu_ns_per_packet'])} CPU per delivered packet; generated "
        f"{res['generated']}, delivered {res['delivered']}"
    )
    out.append(
        "  per CPU: "
        + ", ".join(
            f"cpu{c['cpu']} {_si(c['pps'])} pps ({_ns(c['cpu_ns_per_packet'])}/pkt, "
            f"{c['nvcsw'] + c['nivcsw']} csw)"
            for c in res["cpus"]
        )
    )
    for e in res.get("events", []):
        if e.get("vt_at_ns") is not None:
            out.append(
                f"  event at virtual {e['vt_at_ns'] / 1e6:.6f} ms (done at "
                f"{e['vt_done_ns'] / 1e6:.6f} ms): {e['action']} - {e['result']}"
            )
        else:
            out.append(f"  event at {e['done_at']:.2f} s: {e['action']} - {e['result']}")
    # tc -s qdisc show
    out.append("")
    out.append("tc -s qdisc show")
    for q in res["qdiscs"]:
        if q["kind"] == "noqueue":
            out.append(f"qdisc noqueue 0: dev {q['device']} root refcnt 2")
            continue
        parent = "root" if q["parent"] == "root" else f"parent {q['parent']}"
        extra = (
            " bands 3 priomap 1 2 2 2 1 2 0 0 1 1 1 1 1 1 1 1" if q["kind"] == "pfifo_fast" else ""
        )
        fq = q.get("fq")
        if fq:
            extra = (
                f" limit {fq['limit']}p flow_limit {fq['flow_limit']}p quantum {fq['quantum']}b "
                f"initial_quantum {fq['initial_quantum']}b nopacing"
            )
        out.append(f"qdisc {q['kind']} 0: dev {q['device']} {parent}{extra}")
        out.append(
            f" Sent {q['sent_bytes']} bytes {q['sent_packets']} pkt (dropped {q['dropped']}, "
            f"overlimits {q['overlimits']} requeues {q['requeues']})"
        )
        extra = ""
        if q.get("bulk_lists"):
            extra += (
                f", bulk dequeues {q['bulk_lists']} "
                f"({q['bulk_skbs'] / q['bulk_lists']:.1f} skbs each)"
            )
        if fq:
            extra += f", flows_plimit {fq['flows_plimit']}"
        if q.get("defer_splices"):
            extra += (
                f", defer_list splices {q['defer_splices']} "
                f"({q['defer_spliced'] / q['defer_splices']:.1f} skbs each)"
            )
        out.append(
            f" backlog {q['backlog']}b {q['qlen']}p requeues {q['requeues']}  "
            f"[bypass {q['bypass']}, runs {q['runs']}, dequeued in runs {q['run_packets']}"
            f"{extra}]"
        )
    # ethtool -S
    out.append("")
    out.append("ethtool -S (per TX queue)")
    for q in res["queues"]:
        if not q["tx_packets"] and not q["packets"]:
            continue
        out.append(
            f"  {q['device']} tx_queue_{q['queue']}: packets {q['packets']} bytes {q['bytes']} "
            f"({_si(q['pps'])} pps) stops {q['tx_stops']} restarts {q['tx_restart']} "
            f"busy {q['tx_busy']} irq cpu{q['irq_cpu']} completions local "
            f"{q['completions_local']} remote {q['completions_remote']}"
        )
        if q.get("bql"):
            out.append(
                f"    byte_queue_limits: limit {q['bql_limit']} (max reached "
                f"{q['bql_limit_max']}) inflight {q['bql_inflight']}, stopped by BQL "
                f"{q['bql_stack_xoffs']} times"
            )
    vt = res.get("vt")
    if vt:
        out.append("")
        out.append(
            f"virtual time: {vt['virtual_s'] * 1e3:.3f} ms"
            + (
                " (the packet budget's, from the start to its last wire finish)"
                if vt.get("window") == "packets"
                else ""
            )
            + f" took {vt['wall_s']:.2f} s of wall "
            f"time (slowdown {vt['slowdown']:,.0f}x); max skew {vt['max_skew_ns']} ns; "
            f"{vt['order_violations']} of {vt['grants']} lock grants out of virtual order; "
            f"{vt['nested_acquires']} nested acquires, {vt['window_waits']} window waits"
        )
        w = max((len(v["name"]) for v in vt["locks"]), default=0)
        for v in sorted(vt["locks"], key=lambda v: -v["wait_total_ns"]):
            out.append(
                f"  {v['name']:<{w}}  grants {v['grants']:>8}  waited {_ns(v['wait_total_ns']):>9}"
                f"  held {_ns(v['hold_total_ns']):>9}  out of order {v['order_violations']}"
                f"  other spinners {v['spinners'] / v['grants']:.2f} per grant"
                + (
                    f" (+{v['line_spinners'] / v['grants']:.2f} at writes to its line)"
                    if v.get("line_spinners")
                    else ""
                )
            )
    # lock_stat
    if res["locks"]:
        out.append("")
        out.append(
            "lock_stat (class name, con-bounces, contentions, waittime-min/max/total, "
            "acq-bounces, acquisitions, holdtime-min/max/total)"
            + (" - wall clock: the virtual waits and holds are above" if vt else "")
        )
        w = max(len(r["name"]) for r in res["locks"])
        for r in sorted(res["locks"], key=lambda r: -r["contentions"]):
            out.append(
                f"  {r['name']:<{w}} {r['con_bounces']:>8} {r['contentions']:>8} "
                f"{_ns(r['waittime_min_ns']):>9} {_ns(r['waittime_max_ns']):>9} "
                f"{_ns(r['waittime_total_ns']):>9} {r['acq_bounces']:>8} {r['acquisitions']:>9} "
                f"{_ns(r['holdtime_min_ns']):>9} {_ns(r['holdtime_max_ns']):>9} "
                f"{_ns(r['holdtime_total_ns']):>9}"
            )
    # messages and drops
    if res["messages"]:
        out.append("")
        out.append("kernel messages (net_crit_ratelimited)")
        for m in res["messages"]:
            out.append(
                f"  {m['text']}  x{m['printed']} printed, {m['suppressed']} callbacks suppressed"
            )
    drops = {k: v for k, v in res["drops"].items() if v}
    out.append("")
    out.append("drops by reason: " + (", ".join(f"{k} {v}" for k, v in drops.items()) or "none"))
    lat = res["latency"]
    if lat.get("count"):
        out.append(
            f"enqueue->wire latency: p50 {_ns(lat['p50'])}, p90 {_ns(lat['p90'])}, "
            f"p99 {_ns(lat['p99'])}, p99.9 {_ns(lat['p999'])}, max {_ns(lat['max'])} "
            f"({lat['count']} packets)"
        )
    m = res["mechanism"]
    n = res["nic"]
    if m["owner_wait_ns_per_relock"] is None:
        owner = "the qdisc owner never re-took root_lock"
    elif m["owner_ahead_per_relock"] is None:  # the virtual clock counts no queue
        owner = (
            f"qdisc owner waited {_ns(m['owner_wait_ns_per_relock'])} of virtual time "
            "per root_lock re-take"
        )
    else:
        owner = (
            f"qdisc owner found {m['owner_ahead_per_relock']:.2f} ahead per root_lock re-take "
            f"(waited {_ns(m['owner_wait_ns_per_relock'])})"
        )
    out.append(
        f"mechanism: {owner}, {m['packets_per_qdisc_run']:.2f} "
        f"dequeued per qdisc run, bypass {m['bypass']}, enqueued {m['enqueued']}, busylock "
        f"takes {m['busylock_taken']}, requeues {m['requeues']}, "
        f"{m['ctx_switches_per_packet']:.3f} context switches per packet, "
        f"{m.get('wmem_sleeps', 0)} sleeps for send-buffer space"
    )
    if m.get("softirq_runs"):
        out.append(
            f"softirq: __do_softirq {m['softirq_runs']} times, {m['softirq_restarts']} restarts "
            f"({m['softirq_restarts'] / m['softirq_runs']:.2f} per call), ended with NET_TX "
            f"pending by MAX_SOFTIRQ_RESTART {m['softirq_restart_limit']} / MAX_SOFTIRQ_TIME "
            f"{m['softirq_time_limit']} times; ksoftirqd woken {m['ksoftirqd_wakeups']}, ran "
            f"{m['ksoftirqd_runs']}; deferred to a runnable ksoftirqd {m['softirq_deferred']}"
        )
    pj = res.get("projection")
    if pj:
        out.append(
            wrap(
                f"projection (not a measurement): had {pj['lock'].split(' ')[-1]}'s "
                f"{pj['handoffs']} handoffs cost {_ns(pj['handoff_ns'])} (a spinning kernel "
                f"waiter) instead of the measured mean {_ns(pj['mean_handoff_ns'])}, the same "
                f"schedule would take {pj['saved_s']:.2f} s less: {_si(pj['projected_pps'])} pps "
                f"instead of {_si(pj['measured_pps'])} (a bound if that lock is the bottleneck: "
                f"held or handed over {100 * min(pj['busy_share'], 1):.0f}% of the window)"
            )
        )
    if m.get("xmit_recursion_max") or m.get("xmit_recursion_cut"):
        lim = res["setup"]["profile"]["recursion_limit"]
        cut = m.get("xmit_recursion_cut")
        out.append(
            f"xmit_recursion: deepest noqueue xmit passed at counter {m['xmit_recursion_max']}"
            + (
                f"; cut when the counter reached {cut} (> limit {lim})"
                if cut
                else f" (limit {lim}: never exceeded)"
            )
        )
    out.append(
        f"flows: {n['reorders']} reordered, {n['flow_queue_changes']} queue changes "
        f"({n['reorders_moved']} reordered after a move)"
    )
    out.append("")
    verdict = "all hold" if res["invariants_ok"] else "BROKEN"
    out.append(f"invariants: {verdict}")
    for c in res["invariants"]:
        if not c["ok"]:
            out.append(f"  FAIL {c['name']}: {c['detail']}")
    if st != "ok":
        out.append(f"RUN {st.upper()} (exit {res['exit_code']}) {label}")
        for f in res.get("faults", []):
            out.append(f"  {f}")
        for h in res.get("lock_holders", []):
            out.append(
                f"  lock {h['lock']}: owner cpu{h['owner_cpu']} pid {h['owner_pid']} "
                f"{'alive' if h['owner_alive'] else 'DEAD'}, waiters {h['waiters']}"
            )
    return "\n".join(out)


def comparison(preset, results: Sequence[Mapping[str, Any]]) -> str:
    keys = preset.compare or (("pps", "delivered pps"), ("cpu_ns_per_packet", "CPU ns/pkt"))
    rows = [[r.get("label", "")] + [_fmt(k, derived(r).get(k)) for k, _ in keys] for r in results]
    head = ["variant"] + [h for _, h in keys]
    widths = [max(len(str(x)) for x in col) for col in zip(head, *rows)]

    def line(cells: list) -> str:
        return "  ".join(
            str(c).rjust(w) if i else str(c).ljust(w) for i, (c, w) in enumerate(zip(cells, widths))
        )

    out = ["", f"== {preset.name}: side by side ==", line(head)]
    out += [line(r) for r in rows]
    rs = ratios(preset, results)
    if rs:
        out.append("")
        for r in rs:
            out.append(
                f"{r['what']}: pps {_ratio(r['pps'])}, CPU per packet "
                f"{_ratio(r['cpu_ns_per_packet'])}"
            )
        out.append(DEFER_KERNEL_LINE)
    return "\n".join(out)


def ratios(preset, results: Sequence[Mapping[str, Any]]) -> list[dict]:
    """The preset's ratios (numerator / denominator variant) of delivered pps
    and CPU ns per packet; None where a figure is missing."""
    by = {r.get("label"): r for r in results}
    out = []
    for num, den, what in getattr(preset, "ratios", ()):
        if num not in by or den not in by:
            continue
        a, b = by[num], by[den]
        row = {"what": what, "numerator": num, "denominator": den}
        for k in ("pps", "cpu_ns_per_packet"):
            x, y = a.get(k), b.get(k)
            row[k] = x / y if x is not None and y else None
        out.append(row)
    return out


def _ratio(v) -> str:
    return "-" if v is None else f"{v:.2f}x"
