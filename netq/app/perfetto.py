"""A traced run as a Perfetto trace (``--trace PATH``): open it in the
Perfetto UI (ui.perfetto.dev) as it is.

Tracks (TrackDescriptor packets, one trace sequence):

* per emulated CPU (and the control process, when it did anything) a group
  with a sub-track per lock it took (``wait LOCK`` slices for a contended
  wait, ``hold LOCK`` slices while it held it), one for its qdisc runs
  (``qdisc run`` slices with the skbs sent; bypasses as instants), one for
  its NET_TX softirq, one for send-buffer sleeps, and one for its skbs
  (``net_dev_queue`` and ``net_dev_start_xmit`` instants);
* the NIC, with a sub-track per TX queue: ``net_dev_xmit`` instants at each
  skb's wire finish, completion interrupts, and counters of whether the
  queue is stopped and of its BQL limit;
* per lock, counters of its owner CPU (-1: free) and of the CPUs waiting
  for it.

Each skb's instants are joined by a flow (enqueue -> driver -> wire).  Slices
on one track nest as the events did; a slice still open when the log ends
(a log that filled up) is closed at the trace's last timestamp, and its end
is marked.  Timestamps are the run's clock, shifted so the trace starts at 0.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

import numpy as np

# the trace builder is the optional `trace` extra's (perfetto); imported at
# the top: this module is only imported when a trace is asked for
from perfetto.protos.perfetto.trace.perfetto_trace_pb2 import TrackEvent
from perfetto.trace_builder.proto_builder import TraceProtoBuilder

from netq.kernel import tracepoints as tp
from netq.machine.tracedata import TraceData

SEQ = 1
BEGIN, END, INSTANT, COUNTER = (
    TrackEvent.TYPE_SLICE_BEGIN,
    TrackEvent.TYPE_SLICE_END,
    TrackEvent.TYPE_INSTANT,
    TrackEvent.TYPE_COUNTER,
)


@dataclass
class _Builder:
    t0: int
    #: perfetto's trace builder (protobuf TracePackets in memory)
    trace: TraceProtoBuilder = field(default_factory=TraceProtoBuilder)
    #: (ts, order, packet fields) of every event packet, sorted at the end
    events: list[tuple[int, int, dict]] = field(default_factory=list)
    uuids: dict[str, int] = field(default_factory=dict)

    def track(self, name: str, parent: str | None = None, counter: bool = False) -> int:
        key = name if parent is None else f"{parent}/{name}"
        uid = self.uuids.get(key)
        if uid is not None:
            return uid
        uid = self.uuids[key] = len(self.uuids) + 1
        p = self.trace.add_packet()
        p.trusted_packet_sequence_id = SEQ
        d = p.track_descriptor
        d.uuid = uid
        d.name = name
        if parent is not None:
            d.parent_uuid = self.track(parent)
        if counter:
            d.counter.SetInParent()
        return uid

    def event(self, ts: int, track: int, kind: int, name: str = "", **kw: object) -> None:
        self.events.append((ts, len(self.events), dict(track=track, type=kind, name=name, **kw)))

    def serialize(self) -> bytes:
        self.events.sort(key=lambda e: (e[0], e[1]))
        for ts, _, f in self.events:
            p = self.trace.add_packet()
            p.trusted_packet_sequence_id = SEQ
            p.timestamp = max(0, ts - self.t0)
            e = p.track_event
            e.type = f["type"]
            e.track_uuid = f["track"]
            if f["name"]:
                e.name = f["name"]
            if "value" in f:
                e.counter_value = int(f["value"])
            for fid in f.get("flows", ()):
                e.flow_ids.append(fid)
            for fid in f.get("ends", ()):
                e.terminating_flow_ids.append(fid)
            for k, v in f.get("args", {}).items():
                a = e.debug_annotations.add()
                a.name = k
                if isinstance(v, str):
                    a.string_value = v
                else:
                    a.int_value = int(v)
        return self.trace.serialize()


def flow_id(sock: int, seq: int) -> int:
    """One flow per skb, named by (socket, its sequence number)."""
    return (sock << 32 | (seq & 0xFFFFFFFF)) + 1


def build(t: TraceData) -> bytes:
    """The serialized Perfetto trace of ``t``."""
    nonempty = [ev for ev in t.events if len(ev)]
    t0 = min((int(ev[:, 0].min()) for ev in nonempty), default=0)
    last = max((int(ev[:, 0].max()) for ev in nonempty), default=0)
    b = _Builder(t0)
    b.track("run")
    b.event(t.t_go, b.track("run"), INSTANT, "measured window begins")
    b.event(t.t_stop, b.track("run"), INSTANT, "measured window ends")
    nic = len(t.participants) - 1
    for p, ev in enumerate(t.events):
        if not len(ev):
            continue
        if p == nic:
            _nic(b, t, ev)
        else:
            _cpu(b, t, t.participants[p], ev, last)
    _lock_counters(b, t)
    _queue_counters(b, t)
    if t.total_dropped:
        b.event(last, b.track("run"), INSTANT, f"{t.total_dropped} events dropped (logs full)")
    return b.serialize()


def write(t: TraceData, path: str) -> None:
    with open(path, "wb") as f:
        f.write(build(t))


def _cpu(b: _Builder, t: TraceData, who: str, ev: np.ndarray, last: int) -> None:
    """One CPU's (or the control process's) events: slices per sub-track."""
    b.track(who)
    open_slices: dict[int, list[str]] = defaultdict(list)

    def begin(ts: int, sub: str, name: str, args: dict | None = None) -> None:
        uid = b.track(sub, who)
        b.event(ts, uid, BEGIN, name, args=args or {})
        open_slices[uid].append(name)

    def end(ts: int, sub: str, args: dict | None = None) -> None:
        uid = b.track(sub, who)
        if open_slices[uid]:  # an end whose begin was not logged is left out
            open_slices[uid].pop()
            b.event(ts, uid, END, args=args or {})

    for ts, kind, a, x in ev.tolist():
        if kind == tp.LOCK_CONTENTION_BEGIN:
            begin(ts, t.locks[a], f"wait {t.locks[a]}")
        elif kind == tp.LOCK_CONTENTION_END:
            end(ts, t.locks[a])
        elif kind == tp.LOCK_ACQUIRED:
            how = {0: "", 1: " (after waiting)", 2: " (trylock)"}.get(x, "")
            begin(
                ts, t.locks[a], f"hold {t.locks[a]}", args={"acquired": how.strip(" ()") or "free"}
            )
        elif kind == tp.LOCK_RELEASED:
            end(ts, t.locks[a])
        elif kind == tp.LOCK_TRYLOCK_FAILED:
            b.event(ts, b.track(t.locks[a], who), INSTANT, f"trylock {t.locks[a]} failed")
        elif kind == tp.QDISC_RUN_BEGIN:
            begin(ts, "qdisc", f"qdisc run {t.qdiscs[a]}")
        elif kind == tp.QDISC_RUN_END:
            end(ts, "qdisc", args={"packets": x})
        elif kind == tp.QDISC_BYPASS:
            b.event(ts, b.track("qdisc", who), INSTANT, f"bypass {t.qdiscs[a]}")
        elif kind == tp.SOFTIRQ_ENTRY:
            begin(ts, "softirq", "NET_TX softirq")
        elif kind == tp.SOFTIRQ_EXIT:
            end(ts, "softirq", args={"passes": a})
        elif kind == tp.WMEM_SLEEP:
            begin(ts, "sleep", "sock_wait_for_wmem")
        elif kind == tp.WMEM_WAKE:
            end(ts, "sleep")
        elif kind == tp.NET_DEV_QUEUE:
            b.event(ts, b.track("skbs", who), INSTANT, "net_dev_queue", flows=[flow_id(a, x)])
        elif kind == tp.NET_DEV_START_XMIT:
            sock = a & tp.SOCK_MASK
            b.event(
                ts,
                b.track("skbs", who),
                INSTANT,
                f"net_dev_start_xmit {t.txqs[a >> tp.TXQ_SHIFT]}",
                flows=[flow_id(sock, x)],
            )
        elif kind == tp.RECURSION_CUT:
            b.event(ts, b.track("skbs", who), INSTANT, f"xmit_recursion cut at depth {x}")
        elif kind == tp.DEFER_SPLICE:
            b.event(ts, b.track("qdisc", who), INSTANT, f"defer_list splice ({x} skbs)")
        elif kind in (tp.QUEUE_STOP, tp.QUEUE_WAKE):
            pass  # drawn on the queue's own track (_queue_counters)
    for uid, names in open_slices.items():
        for _ in names:  # the log filled up (or the run ended) inside these
            b.event(last, uid, END, args={"cut": "the log ended first"})


def _nic(b: _Builder, t: TraceData, ev: np.ndarray) -> None:
    b.track("nic")
    for ts, kind, a, x in ev.tolist():
        if kind == tp.NET_DEV_XMIT:
            q, sock = a >> tp.TXQ_SHIFT, a & tp.SOCK_MASK
            b.event(ts, b.track(t.txqs[q], "nic"), INSTANT, "net_dev_xmit", ends=[flow_id(sock, x)])
        elif kind == tp.NIC_IRQ:
            b.event(ts, b.track(t.txqs[a], "nic"), INSTANT, "tx completion", args={"skbs": x})
        elif kind == tp.BQL_LIMIT:
            b.event(ts, b.track(f"{t.txqs[a]} bql limit", "nic", counter=True), COUNTER, value=x)


def _merged(t: TraceData, kinds: tuple[int, ...]) -> list[tuple[int, int, int, int, int]]:
    """Events of ``kinds`` from every participant, in time order:
    (ts, participant, kind, a, b)."""
    rows = []
    for p, ev in enumerate(t.events):
        if len(ev):
            sel = ev[np.isin(ev[:, 1], kinds)]
            rows += [(int(r[0]), p, int(r[1]), int(r[2]), int(r[3])) for r in sel]
    rows.sort(key=lambda r: (r[0], r[1]))
    return rows


def _lock_counters(b: _Builder, t: TraceData) -> None:
    """Per lock: owner CPU and waiters over time, from every participant."""
    waiting: dict[int, int] = defaultdict(int)
    kinds = (tp.LOCK_ACQUIRED, tp.LOCK_RELEASED, tp.LOCK_CONTENTION_BEGIN, tp.LOCK_CONTENTION_END)
    for ts, p, kind, a, _ in _merged(t, kinds):
        name = t.locks[a]
        if kind == tp.LOCK_ACQUIRED:
            b.event(ts, b.track(f"{name} owner", "locks", counter=True), COUNTER, value=p)
        elif kind == tp.LOCK_RELEASED:
            b.event(ts, b.track(f"{name} owner", "locks", counter=True), COUNTER, value=-1)
        else:
            waiting[a] += 1 if kind == tp.LOCK_CONTENTION_BEGIN else -1
            b.event(
                ts, b.track(f"{name} waiters", "locks", counter=True), COUNTER, value=waiting[a]
            )


def _queue_counters(b: _Builder, t: TraceData) -> None:
    """Per TX queue: 1 while the driver or BQL has it stopped."""
    reasons: dict[int, int] = defaultdict(int)
    for ts, _p, kind, a, why in _merged(t, (tp.QUEUE_STOP, tp.QUEUE_WAKE)):
        bit = 1 << why
        before = reasons[a]
        reasons[a] = before | bit if kind == tp.QUEUE_STOP else before & ~bit
        if bool(before) != bool(reasons[a]):
            b.event(
                ts,
                b.track(f"{t.txqs[a]} stopped", "nic", counter=True),
                COUNTER,
                value=1 if reasons[a] else 0,
            )
