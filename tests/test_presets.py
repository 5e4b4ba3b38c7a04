"""Each preset runs short and its mechanism counters move as they must.

Mechanisms, not timings: recursion is cut exactly at the profile's limit; XPS
1:1 at a low rate never moves a queue lock between CPUs; busylock is taken
only by senders that found the qdisc running, and never under rootlock.
"""

from __future__ import annotations

from netq.app.presets import presets
from workers.supervisor import Supervisor


def _variants(name: str, duration: float = 0.6):
    return presets(duration)[name].configs()


def _run(cfg) -> dict:
    out = Supervisor(cfg).run()
    assert out.status == "ok" and out.result["invariants_ok"], out.faults
    return out.result


def test_recursion_is_cut_exactly_at_each_profiles_limit():
    for label, cfg in _variants("recursion"):
        res = _run(cfg)
        limit = res["setup"]["profile"]["recursion_limit"]
        m = res["mechanism"]
        assert m["xmit_recursion_cut"] == limit + 1, label  # refused when counter > limit
        assert m["xmit_recursion_max"] == limit, label  # the loop passed up to the limit
        assert res["drops"]["XMIT_RECURSION"] > 0  # the vlan loop (LLTX)
        assert res["drops"]["DEAD_LOOP_OWNER"] > 0  # the tunnel loop (xmit_lock_owner)
        texts = {m["text"] for m in res["messages"]}
        assert "Dead loop on virtual device loopb, fix it urgently!" in texts
        assert res["setup"]["device_loops"] == [["loopa", "loopb"], ["tun0", "tun1"]]
        # the 9-deep legal stack delivers: every stk0 skb reached the wire
        assert res["delivered"] > 0


def test_xps_one_to_one_at_a_low_rate_never_bounces_a_queue_lock():
    label, cfg = _variants("xps")[0]
    assert label == "xps 1:1"
    for t in cfg.traffic:
        t.rate_pps = 300.0
    res = _run(cfg)
    qlocks = [r for r in res["locks"] if r["name"].endswith(("root_lock", "_xmit_lock"))]
    assert qlocks and sum(r["acq_bounces"] for r in qlocks) == 0
    assert sum(r["contentions"] for r in qlocks) == 0
    # and every completion lands on the CPU that sent
    assert all(q["completions_remote"] == 0 for q in res["queues"])


def test_without_xps_flows_share_queues_and_locks_bounce():
    label, cfg = _variants("xps")[1]
    assert label == "no xps (hash)"
    res = _run(cfg)
    qlocks = [r for r in res["locks"] if r["name"].endswith(("root_lock", "_xmit_lock"))]
    assert sum(r["acq_bounces"] for r in qlocks) > 0
    assert any(q["completions_remote"] for q in res["queues"])


def test_busylock_is_taken_only_while_the_qdisc_runs():
    seen = set()
    for label, cfg in _variants("busylock"):
        if cfg.lock_fairness != "fifo":
            continue
        res = _run(cfg)
        busy = sum(r["acquisitions"] for r in res["locks"] if r["name"].endswith("busylock"))
        taken = res["mechanism"]["busylock_taken"]
        # every busylock acquisition is a sender that found the qdisc running
        assert busy == taken, label
        if cfg.strategy == "rootlock":
            assert taken == 0
        else:
            assert taken > 0
        seen.add(cfg.strategy)
    assert seen == {"rootlock", "busylock"}
    labels = [label for label, _ in _variants("busylock")]
    assert [lab for lab in labels if "what-if" in lab] == [
        "rootlock (what-if) fifo",
        "rootlock (what-if) unfair",
    ]


def test_generations_runs_every_kernel_as_it_runs_its_qdisc():
    """Each generation's variant runs its own mechanism: rootlock never takes
    busylock; from 4.16 pfifo_fast is TCQ_F_NOLOCK whatever the strategy, so
    it takes no busylock and no defer_list under 4.19, 6.18 and 6.19; the
    defer_list and busylock meet the locked pfifo and fq; fq never bypasses;
    BQL and bulk dequeue appear from their kernels on; only the labelled
    what-ifs are configurations no kernel has; the softirq loop ran."""
    from netq.app.presets import GENERATIONS_SNDBUF
    from netq.app.report import ratios

    p = presets(0.5)["generations"]
    results = []
    for label, cfg in p.configs():
        assert cfg.traffic[0].sndbuf == GENERATIONS_SNDBUF
        res = _run(cfg)
        res["label"] = label
        results.append(res)
        m = res["mechanism"]
        (q,) = [r for r in res["qdiscs"] if r["kind"] in ("pfifo_fast", "pfifo", "fq")]
        (txq,) = res["queues"]
        s = res["setup"]
        profile = s["profile"]["name"]
        assert ("(what-if)" in label) == bool(s["what_if"]), label
        assert txq["bql"] == (profile != "2.6.37"), label
        if profile in ("2.6.37", "3.13"):
            assert q["bulk_lists"] == 0, label
        nolock = q["kind"] == "pfifo_fast" and s["pfifo_fast_nolock"]
        assert nolock == label.startswith("nolock"), label
        if nolock or s["strategy"] != "busylock":
            assert m["busylock_taken"] == 0, label
        if s["strategy"] == "defer" and not nolock:
            assert q["defer_splices"] > 0 and q["defer_spliced"] >= q["defer_splices"], label
        else:
            assert q["defer_splices"] == 0, label
        if q["kind"] == "fq":
            assert q["bypass"] == 0, label
        assert m["softirq_runs"] > 0, label
        assert m["softirq_deferred"] == 0 or profile == "4.19", label
        pj = res["projection"]  # fifo locks: handoffs were timed
        assert pj is None or pj["projected_pps"] >= pj["measured_pps"], label
    rs = ratios(p, results)
    assert [r["what"] for r in rs] == [
        "defer / busylock, fq",
        "defer / busylock, pfifo",
        "6.19 / 6.18, pfifo_fast (NOLOCK in both)",
        "NOLOCK / locked pfifo_fast, 6.18 (what-if)",
    ]
    assert all(r["pps"] > 0 and r["cpu_ns_per_packet"] > 0 for r in rs)
