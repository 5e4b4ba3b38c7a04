"""The NIC: drains every TX ring at line rate, completes descriptors, wakes
stopped queues, and records what reached the wire.

One process plays the hardware of every physical device.  Each round it
visits the TX rings in turn (the NIC's TX arbiter), takes up to ``nic_batch``
descriptors from a ring whose device's wire is free, and works out wire time
(line rate in bit/s with per-packet overhead, and/or packets/s), enqueue→wire
latency (into an HDR histogram), per-flow order, per-queue counters and
completion locality.  Then it completes the batch (the ring's consumer index
is the "clean" index) and runs what a driver's TX-completion handler would
on the queue's interrupt CPU — the kernel model's ``eth_tx_clean`` (free the
descriptors, report the bytes to BQL with ``netdev_tx_completed_queue``,
which restarts a queue BQL stopped) and ``eth_tx_wake_queues`` (wake a queue
the driver stopped once ``wake_thresh`` descriptors are free:
``netif_tx_wake_queue`` → ``__netif_schedule`` on that CPU's output_queue) —
and ``sock_def_write_space`` for CPUs that sleep for send-buffer space.  This
module keeps only the hardware: the wire, the counters, the latency and the
order checks.

The per-descriptor work has three implementations that count exactly the
same things (tests/test_nic.py): the compiled helper's ``netq_nic_tx``, one
call per ring (used whenever shm.native is built); per-packet Python for
small rounds; numpy for large ones (the pure-Python backend).

Between rounds the NIC sleeps (:func:`_run`): tx-usecs after a round that
found work (interrupt moderation), until the wire is free, or, with nothing
to send, on its doorbell, which a driver rings after posting a descriptor
(``eth_start_xmit``; the request is each ring's ``RING.wake`` word).  An idle
NIC costs nothing; a busy one costs one wake-up per tx-usecs plus a few us of
Python per round and ~50 ns per descriptor.

Difference from hardware: completion happens when the batch is accounted,
not when each packet's last bit leaves; the latency uses the computed wire
finish time, so it is not affected.  Transmission starts at the round, not at
the doorbell: a packet that arrives while the NIC sleeps out tx-usecs waits
for the next round (as with the polling NIC before the doorbell).
"""

from __future__ import annotations

import contextlib
import cProfile
import os
import signal
import time

import numpy as np
import posix_ipc
from hdrh.histogram import HdrHistogram

from netq.kernel.core.percpu import this
from netq.kernel.core.sock import SKB_TRUESIZE_OVERHEAD, sock_def_write_space
from netq.kernel.drivers.ethernet import eth_tx_clean, eth_tx_wake_queues
from netq.kernel.kstructs import (
    FAULT_LOSE_ONE,
    NETDEV_QUEUE,
    NIC,
    NIC_BLOB_BYTES,
    PHASE_EXIT,
    PHASE_INIT,
    PHASE_STOP,
    RUNCTL,
    SOCK,
)
from netq.kernel.tracepoints import NET_DEV_XMIT, SOCK_MASK, TXQ_SHIFT
from netq.machine.plan import VT_NIC
from shm import native
from shm.ring import RING
from workers.platform import die_with_parent

_WAKE = RING.wake

#: latency histogram: 1 ns .. 60 s, 3 significant digits
LAT_MIN_NS, LAT_MAX_NS, LAT_DIGITS = 1, 60_000_000_000, 3

#: below this many descriptors per round, per-packet Python is cheaper than numpy
SMALL_BATCH = 48

#: longest sleep of the NIC between looks at RUNCTL (phase, abort), in s and ns
IDLE_SLICE_S = 0.05
IDLE_WAIT_NS = 50_000_000


class Nic:
    """The NIC's state; :meth:`poll` does one round over all TX rings."""

    def __init__(self, net) -> None:
        self.net = net
        self.batch = net.cfg.nic_batch
        self.txqs = [q for q in net.txqs if q.ring is not None]
        self.rings = [q.ring for q in self.txqs]
        # per device: wire clock (ns; an array, so that the compiled helper
        # can advance it) and per-packet costs
        self.wire_t = np.zeros(max(d.index for d in net.devices) + 1, dtype=np.int64)
        self.rate = {}
        for d in net.devices:
            c = d.cfg
            self.rate[d.index] = (c.line_rate_bps, c.line_rate_pps, c.wire_overhead)
        n = max(net.nsock, 1)
        self.last_seq = np.full(n, -1, dtype=np.int64)
        self.last_queue = np.full(n, -1, dtype=np.int64)
        self.moved = np.zeros(n, dtype=bool)
        self.hist = HdrHistogram(LAT_MIN_NS, LAT_MAX_NS, LAT_DIGITS)
        self.f = net.nic
        self.sock_base = net.layout["sock"].offset
        self.sock_stride = SOCK.words
        #: count latencies only while measuring (set by the worker)
        self.record_latency = True
        self._lat = np.empty(1 << 16, dtype=np.int64)
        self._lat_n = 0
        #: process rounds of fewer than SMALL_BATCH descriptors packet by packet
        self.small_path = True
        #: per CPU, its sockets with a send-buffer limit: (cpu, [(sock, sndbuf)])
        by_cpu: dict[int, list] = {}
        for sid, cpu, t in net.sock_groups:
            if t.sndbuf:
                by_cpu.setdefault(cpu, []).append((net.socks[sid], t.sndbuf))
        self.limited_socks = sorted(by_cpu.items())
        #: a traced run's NIC log (net:net_dev_xmit per skb), else None
        self.tracer = net.tracer(net.trace_nic) if net.tracing else None
        #: the virtual clock: wire times from each descriptor's post time,
        #: completions at interrupt times (the Python per-descriptor path)
        self.virtual = net.virtual
        #: virtual clock: the extra wire ns per packet (NIC.slow_ns) as last
        #: seen, and, once a slow_nic event has changed it, every value with
        #: the virtual time from which it applies to a packet's wire start
        self.vslow_now = int(self.f[NIC.slow_ns])
        self.vslow: list[tuple[int, int]] = []
        #: do the per-descriptor work in the compiled helper (netq_nic_tx);
        #: a traced run takes the Python paths, which see every descriptor
        self.native = (
            native.lib is not None
            and net.region.cptr is not None
            and self.tracer is None
            and not self.virtual
        )
        if self.native:
            self._bind_native()

    def _bind_native(self) -> None:
        """The compiled helper's view of this NIC: pointers into the shared
        segment (rings, socket words, per-CPU deliveries) and into this
        process's arrays (wire clocks, flow state, latency buffer)."""
        net, ffi = self.net, native.ffi
        cptr = net.region.cptr
        self._keep = [
            ffi.from_buffer("int64_t[]", a)
            for a in (self.wire_t, self.last_seq, self.last_queue, self._lat)
        ] + [ffi.from_buffer("int8_t[]", self.moved)]
        wire, last_seq, last_queue, lat, moved = self._keep
        self._cw = ffi.new(
            "netq_nicw *",
            {
                "wire_t": wire,
                "by_cpu": cptr + net.layout["nic_by_cpu"].offset,
                "ncpus": net.ncpus,
                "sock": cptr + self.sock_base,
                "sock_stride": self.sock_stride,
                "off_done": SOCK.completed,
                "off_done_bytes": SOCK.completed_bytes,
                "truesize": SKB_TRUESIZE_OVERHEAD,
                "last_seq": last_seq,
                "last_queue": last_queue,
                "moved": moved,
                "nsock": len(self.last_seq),
                "lat": lat,
                "nicf": cptr + net.layout["nic"].base(),
                "noff": [
                    NIC.delivered,
                    NIC.delivered_bytes,
                    NIC.reorders,
                    NIC.reorders_moved,
                    NIC.flow_queue_changes,
                ],
            },
        )
        self._ctxr = {}
        for txq in self.txqs:
            bps, pps, overhead = self.rate[txq.dev.index]
            ring = txq.ring
            self._ctxr[txq.index] = ffi.new(
                "netq_txr *",
                {
                    "idx": cptr + ring.idx_word,
                    "slots": cptr + ring.slot0_word,
                    "mask": ring.mask,
                    "q": txq.index,
                    "dev": txq.dev.index,
                    "qf": cptr + txq.base,
                    "qoff": [
                        NETDEV_QUEUE.irq_cpu,
                        NETDEV_QUEUE.nic_packets,
                        NETDEV_QUEUE.nic_bytes,
                        NETDEV_QUEUE.completions_local,
                        NETDEV_QUEUE.completions_remote,
                    ],
                    "ns_per_byte": 8e9 / bps if bps else 0.0,
                    "min_ns": 1e9 / pps if pps else 0.0,
                    "overhead": overhead,
                },
            )
        self._cout = ffi.new("int64_t[6]")
        self._crings = ffi.new("netq_txr *[]", [self._ctxr[t.index] for t in self.txqs])
        self._cready = ffi.new("int64_t[]", len(self.txqs) + 1)

    def poll(self, now: int | None = None) -> int:
        """Transmit and complete what the rings hold; returns packets sent.

        Every ring whose device's wire is free gives up to ``nic_batch``
        descriptors.  With the compiled helper each ring is one call
        (:meth:`_poll_native`); without it a round of fewer than SMALL_BATCH
        descriptors goes packet by packet and a larger one is processed as
        one numpy batch, so the per-packet cost falls as the batch grows.
        """
        if now is None:
            now = time.perf_counter_ns()
        if self.native:
            return self._poll_native(now)
        parts = []
        for txq in self.txqs:
            if self.wire_t[txq.dev.index] > now:
                continue  # the wire of this device is still busy
            d = txq.ring.peek_batch(self.batch)
            if len(d):
                parts.append((txq, d))
        sent = 0
        net = self.net
        nic = self.f
        if parts and net.runctl[RUNCTL.fault_inject] == FAULT_LOSE_ONE:
            # Test-only: lose one skb without a trace, so that conservation
            # must catch it (a "fault" event, fault = "lose_one"; see supervisor).
            net.runctl[RUNCTL.fault_inject] = 0
            txq, d = parts[0]
            txq.ring.advance(1)
            parts[0] = (txq, d[1:])
            if not len(parts[0][1]):
                parts.pop(0)
        total = sum(len(d) for _, d in parts)
        if parts and total < SMALL_BATCH and self.small_path:
            # a light load: per-packet Python beats ~40 numpy calls on tiny arrays
            for txq, d in parts:
                nbytes = self._transmit_small(txq, d.tolist(), now)
                if eth_tx_clean(txq, len(d), nbytes, now, net):
                    nic[NIC.bql_wakes] += 1
            sent = total
        elif parts:
            finishes, ring_bytes = [], []
            for txq, d in parts:
                fin_q, nbytes = self._wire(txq, d, now)
                finishes.append(fin_q)
                ring_bytes.append(nbytes)
                sent += len(d)
            alld = parts[0][1] if len(parts) == 1 else np.concatenate([d for _, d in parts])
            fin = finishes[0] if len(parts) == 1 else np.concatenate(finishes)
            qidx = np.repeat([t.index for t, _ in parts], [len(d) for _, d in parts])
            self._account(alld, fin, qidx)
            for (txq, d), nbytes in zip(parts, ring_bytes):
                # the driver's TX clean: the descriptors are free, BQL learns
                if eth_tx_clean(txq, len(d), nbytes, now, net):
                    nic[NIC.bql_wakes] += 1
        self.wake_after_round(sent)
        return sent

    def _poll_native(self, now: int) -> int:
        """:meth:`poll` with the per-descriptor work in the compiled helper,
        one call per ring (what :meth:`_transmit_small` does, in C)."""
        lib, cr = native.lib, self._cready
        lib.netq_nic_scan(self._crings, len(self.txqs), self._cw.wire_t, now, cr)
        txqs = self.txqs
        ready = [txqs[cr[i]] for i in range(1, cr[0] + 1)]
        net = self.net
        nic = self.f
        if ready and net.runctl[RUNCTL.fault_inject] == FAULT_LOSE_ONE:
            # Test-only: lose one skb without a trace (see poll)
            net.runctl[RUNCTL.fault_inject] = 0
            ready[0].ring.advance(1)
            if not len(ready[0].ring):
                ready.pop(0)
        sent = 0
        if ready:
            tx, cw, out, batch = lib.netq_nic_tx, self._cw, self._cout, self.batch
            slow = nic[NIC.slow_ns]
            rec = self.record_latency
            for txq in ready:
                if rec and self._lat_n + batch > len(self._lat):
                    self.flush_latency()
                # the queue's and the NIC's counters are counted in C too
                n = tx(self._ctxr[txq.index], cw, batch, now, slow, self._lat_n if rec else -1, out)
                if rec:
                    self._lat_n += n
                # the driver's TX clean: the descriptors are free, BQL learns
                if eth_tx_clean(txq, n, out[1], now, net):
                    nic[NIC.bql_wakes] += 1
                sent += n
        self.wake_after_round(sent)
        return sent

    def wake_after_round(self, sent: int) -> None:
        """After a round's completions: wake the senders whose send buffers
        have room again (sock_def_write_space), if anything completed, and
        the TX queues the driver stopped that have room again."""
        net, nic = self.net, self.f
        if sent:
            woken = sock_def_write_space(net, self.limited_socks)
            if woken:
                nic[NIC.write_space_wakes] += woken
        woken = eth_tx_wake_queues(self.txqs, net)
        if woken:
            nic[NIC.wakes] += woken

    def vslow_poll(self) -> None:
        """Virtual clock: take a slow_nic event's new NIC.slow_ns, which
        applies to packets whose wire starts at or after the event's virtual
        time (VT_NIC.slow_from, written before it)."""
        s = self.f[NIC.slow_ns]
        if s != self.vslow_now:
            if not self.vslow:
                self.vslow.append((-(1 << 62), self.vslow_now))
            self.vslow.append((int(self.net.vt_nic[VT_NIC.slow_from]), int(s)))
            self.vslow_now = s

    def slow_at(self, start: float) -> int:
        """Virtual clock: the extra wire ns of a packet whose wire starts at
        ``start``."""
        for frm, v in reversed(self.vslow):
            if start >= frm:
                return v
        return 0

    def _transmit_small(self, txq, rows: list, now: int, fins: list[int] | None = None) -> int:
        """The same as _wire + _account for a few descriptors, one by one;
        returns their bytes.  ``fins``: on the virtual clock, each row's wire
        finish (:func:`_wire_finishes`).

        tests/test_nic.py checks that both paths give identical counters."""
        dev = txq.dev.index
        bps, pps, overhead = self.rate[dev]
        slow = self.f[NIC.slow_ns]
        if fins is None:
            paced = bps or pps or slow
        else:
            paced = bps or pps or self.vslow_now or self.vslow
        t = float(max(self.wire_t[dev], now))
        f = txq.f
        irq = f[NETDEV_QUEUE.irq_cpu]
        net = self.net
        by_cpu = net.nic_by_cpu
        w = net.words
        stride = self.sock_stride
        cbase, bbase = self.sock_base + SOCK.completed, self.sock_base + SOCK.completed_bytes
        last_seq, last_queue, moved = self.last_seq, self.last_queue, self.moved
        q = txq.index
        nbytes = local = 0
        reorders = reorders_moved = changes = 0
        lat = []
        tr = self.tracer
        for i, (cpu, _seq, sk, sk_seq, length, _prio, tstamp, _qm) in enumerate(rows):
            if fins is not None:
                fin = fins[i]
            elif paced:
                per = (length + overhead) * (8e9 / bps) if bps else 0.0
                if pps:
                    per = max(per, 1e9 / pps)
                t += per + slow
                fin = int(t)
            else:
                fin = now
            nbytes += length
            if cpu == irq:
                local += 1
            by_cpu[cpu] += 1
            lat.append(fin - tstamp)
            if tr is not None:  # net:net_dev_xmit, at its wire finish
                tr.emit_at(
                    fin, NET_DEV_XMIT, q << TXQ_SHIFT | (sk if sk >= 0 else SOCK_MASK), sk_seq
                )
            if sk >= 0:
                lq = last_queue[sk]
                if lq >= 0 and lq != q:
                    moved[sk] = True
                    changes += 1
                last_queue[sk] = q
                if sk_seq <= last_seq[sk]:
                    if moved[sk]:
                        reorders_moved += 1
                    else:
                        reorders += 1
                else:
                    last_seq[sk] = sk_seq
                w[bbase + sk * stride] += length + SKB_TRUESIZE_OVERHEAD
                w[cbase + sk * stride] += 1
        if paced:
            self.wire_t[dev] = int(t) if fins is None else fins[-1]
        n = len(rows)
        f[NETDEV_QUEUE.nic_packets] += n
        f[NETDEV_QUEUE.nic_bytes] += nbytes
        f[NETDEV_QUEUE.completions_local] += local
        f[NETDEV_QUEUE.completions_remote] += n - local
        nic = self.f
        nic[NIC.delivered] += n
        nic[NIC.delivered_bytes] += nbytes
        if changes:
            nic[NIC.flow_queue_changes] += changes
        if reorders:
            nic[NIC.reorders] += reorders
        if reorders_moved:
            nic[NIC.reorders_moved] += reorders_moved
        if self.record_latency:
            self._record_latency(np.array(lat, dtype=np.int64))
        return nbytes

    def _wire(self, txq, d: np.ndarray, now: int) -> tuple[np.ndarray, int]:
        """Wire finish times of a ring's batch and its bytes; per-queue counters."""
        lens = d[:, 4]
        dev = txq.dev.index
        bps, pps, overhead = self.rate[dev]
        slow = self.f[NIC.slow_ns]
        if bps or pps or slow:
            start = max(self.wire_t[dev], now)
            per = (lens + overhead) * (8e9 / bps) if bps else np.zeros(len(d))
            if pps:
                per = np.maximum(per, 1e9 / pps)
            if slow:
                per = per + slow
            finish = start + np.cumsum(per).astype(np.int64)
            self.wire_t[dev] = int(finish[-1])
        else:
            finish = np.full(len(d), now, dtype=np.int64)
        f = txq.f
        n = len(d)
        nbytes = int(lens.sum())
        f[NETDEV_QUEUE.nic_packets] += n
        f[NETDEV_QUEUE.nic_bytes] += nbytes
        local = int(np.count_nonzero(d[:, 0] == f[NETDEV_QUEUE.irq_cpu]))
        f[NETDEV_QUEUE.completions_local] += local
        f[NETDEV_QUEUE.completions_remote] += n - local
        return finish, nbytes

    def _account(self, d: np.ndarray, finish: np.ndarray, qidx: np.ndarray) -> None:
        """NIC totals, per-CPU deliveries, latency, flow order, socket completions."""
        n = len(d)
        nic = self.f
        nic[NIC.delivered] += n
        nic[NIC.delivered_bytes] += int(d[:, 4].sum())
        by_cpu = self.net.nic_by_cpu
        for c, k in enumerate(np.bincount(d[:, 0], minlength=self.net.ncpus).tolist()):
            if k:
                by_cpu[c] += k
        if self.record_latency:
            self._record_latency(finish - d[:, 6])
        self._check_order(d[:, 2], d[:, 3], qidx, d[:, 4])
        if self.tracer is not None:  # net:net_dev_xmit, at each wire finish
            sock = np.where(d[:, 2] >= 0, d[:, 2], SOCK_MASK)
            self.tracer.emit_many(finish, NET_DEV_XMIT, (qidx << TXQ_SHIFT) | sock, d[:, 3])

    def _record_latency(self, lat: np.ndarray) -> None:
        """Buffer latencies; hand them to the HDR histogram in bulk."""
        k = len(lat)
        if self._lat_n + k > len(self._lat):
            self.flush_latency()
        if k > len(self._lat):
            lat = lat[: len(self._lat)]
            k = len(lat)
        self._lat[self._lat_n : self._lat_n + k] = lat
        self._lat_n += k

    def flush_latency(self) -> None:
        """Record the buffered latencies: values are first rounded to the
        histogram's own precision (3 significant digits), so one
        record_value call covers many packets."""
        if not self._lat_n:
            return
        v = np.clip(self._lat[: self._lat_n], LAT_MIN_NS, LAT_MAX_NS)
        self._lat_n = 0
        scale = 10.0 ** np.maximum(np.floor(np.log10(v)) - (LAT_DIGITS - 1), 0)
        q = (np.floor(v / scale) * scale).astype(np.int64)
        vals, counts = np.unique(q, return_counts=True)
        rec = self.hist.record_value
        for val, c in zip(vals.tolist(), counts.tolist()):
            rec(val, c)

    def _check_order(
        self, sk: np.ndarray, seq: np.ndarray, queue: np.ndarray, lens: np.ndarray
    ) -> None:
        """Per-flow order: within a flow, sequence numbers only grow.  Also
        completes each skb on its socket (count and send-buffer bytes)."""
        valid = sk >= 0
        if not valid.all():
            sk, seq, queue, lens = sk[valid], seq[valid], queue[valid], lens[valid]
        if not len(sk):
            return
        order = np.argsort(sk, kind="stable")
        sks, seqs, qs = sk[order], seq[order], queue[order]
        same = sks[1:] == sks[:-1]
        first = np.concatenate(([True], ~same))
        last = np.concatenate((~same, [True]))
        fs = sks[first]
        gid = np.cumsum(first) - 1  # group (flow) number of each packet
        lq = self.last_queue[fs]
        changed = np.zeros(len(sks), dtype=bool)
        changed[first] = (lq >= 0) & (lq != qs[first])
        changed[1:] |= same & (qs[1:] != qs[:-1])
        nchanged = int(np.count_nonzero(changed))
        # moved up to and including each packet: moved before, or a change so far
        cum = np.cumsum(changed)
        base = (cum - changed)[first]  # changes before each group's start
        moved_at = self.moved[sks] | ((cum - base[gid]) > 0)
        if nchanged:
            self.moved[sks[changed]] = True
            self.f[NIC.flow_queue_changes] += nchanged
        self.last_queue[sks[last]] = qs[last]
        # out of order = not above the highest sequence seen before in the flow:
        # a running maximum per flow (flows offset apart so maxima never mix)
        big = np.int64(1) << 40
        v = seqs + gid * big
        acc = np.maximum.accumulate(v)
        prior = np.empty_like(v)
        prior[1:] = acc[:-1]
        prior[first] = -1
        prior = np.maximum(prior, (self.last_seq[fs] + np.arange(len(fs)) * big)[gid])
        bad = v <= prior
        if bad.any():
            mv = moved_at[bad]
            self.f[NIC.reorders_moved] += int(np.count_nonzero(mv))
            self.f[NIC.reorders] += int(np.count_nonzero(~mv))
        self.last_seq[sks[last]] = np.maximum(
            self.last_seq[sks[last]], acc[last] - np.arange(len(fs)) * big
        )
        # completions per socket: sock_wfree() frees the send-buffer charge
        n = len(self.last_seq)
        counts = np.bincount(sks, minlength=n)
        nbytes = np.bincount(sks, weights=lens[order] + SKB_TRUESIZE_OVERHEAD, minlength=n)
        w = self.net.words
        stride = self.sock_stride
        base, bbase = self.sock_base + SOCK.completed, self.sock_base + SOCK.completed_bytes
        for s in np.flatnonzero(counts).tolist():
            w[bbase + s * stride] += int(nbytes[s])
            w[base + s * stride] += int(counts[s])

    # -- sleeping -------------------------------------------------------------------
    def wait_ns(self, now: int) -> int | None:
        """How long until a ring with descriptors may send: 0 now, > 0 while
        its device's wire is busy; None when every ring is empty."""
        if self.native:
            w: int = native.lib.netq_nic_scan(
                self._crings, len(self.txqs), self._cw.wire_t, now, self._cready
            )
            return None if w < 0 else w
        wait = None
        wire_t = self.wire_t
        for txq in self.txqs:
            if len(txq.ring):
                w = max(0, wire_t[txq.dev.index] - now)
                if not w:
                    return 0
                wait = w if wait is None else min(wait, w)
        return wait

    def request_doorbell(self) -> bool:
        """Ask every ring's producer to ring the doorbell (RING.wake, set
        with a full barrier: an atomic xchg), then look at the rings again:
        returns True when all are still empty, so that a descriptor
        published before the request was seen is not slept on."""
        xchg = self.net.atomics.xchg
        for r in self.rings:
            xchg(r.idx_word + _WAKE, 1)
        return not any(len(r) for r in self.rings)

    def sleep_idle(self, doorbell: posix_ipc.Semaphore, timeout_s: float) -> bool:
        """Every ring is empty: request the doorbell and, if the rings are
        still empty, sleep until it rings or ``timeout_s`` passes; then
        withdraw the request.  Returns whether the doorbell woke it.

        Several drivers may each have rung once (one per ring asked): the
        posts beyond the first are taken here, so that they do not cut the
        next moderation sleeps short.  A phase change's post taken with them
        is not lost: the caller looks at RUNCTL next."""
        woken = self.request_doorbell() and _nap(doorbell, timeout_s)
        for r in self.rings:
            r.cancel_wake()
        if woken:
            with contextlib.suppress(posix_ipc.BusyError):
                while True:
                    doorbell.acquire(0)
        return woken

    def encode_latency(self) -> bytes:
        """The histogram, HdrHistogram-encoded (base64 text), for the report."""
        self.flush_latency()
        return self.hist.encode()


NIC_READY, NIC_RUN, NIC_DONE = 1, 2, 3


def _nap(doorbell: posix_ipc.Semaphore, seconds: float) -> bool:
    """Sleep up to ``seconds`` on the doorbell semaphore (a bounded wait; a
    timed wait costs the host a little less CPU than time.sleep here); a
    ring of the doorbell ends it early.  Returns whether it rang."""
    try:
        doorbell.acquire(seconds)
    except posix_ipc.BusyError:
        return False
    return True


def _run(nic: Nic, net) -> None:
    """The NIC's main loop, from PHASE_RUN to PHASE_EXIT (or abort).

    A round (:meth:`Nic.poll`) drains every ring whose wire is free.  Then:

    * a round that took ``nic_batch / 4`` or more keeps going (the load
      keeps the NIC busy, as NAPI keeps polling under load);
    * a round that found something is followed by interrupt moderation
      (ethtool -C tx-usecs, ``nic_coalesce_us``): the NIC sleeps tx-usecs
      before its next round, so a steady load is served in batches of
      tx-usecs' worth of packets, one wake-up each;
    * descriptors waiting for a busy wire (line rate, a slow NIC): the NIC
      sleeps until the earliest wire is free;
    * nothing anywhere: the NIC asks every ring for the doorbell
      (:meth:`Nic.sleep_idle`) and sleeps until a driver rings it.

    Every sleep is bounded by IDLE_SLICE_S, and the supervisor rings the
    doorbell when it changes RUNCTL.phase or raises abort, so a sleeping NIC
    sees PHASE_STOP, PHASE_EXIT and abort at once.
    """
    f = net.nic
    rc = net.runctl
    doorbell = net.nic_doorbell
    cpu0 = time.process_time_ns()
    stopped = False
    coalesce_s = net.cfg.nic_coalesce_us / 1e6
    busy = max(1, nic.batch // 4)
    clock = time.perf_counter_ns
    while rc[RUNCTL.phase] != PHASE_EXIT and not rc[RUNCTL.abort]:
        n = nic.poll()
        if n >= busy:
            continue
        if not n and not stopped and rc[RUNCTL.phase] == PHASE_STOP:
            stopped = True
            f[NIC.cpu_ns] = time.process_time_ns() - cpu0
        wait = nic.wait_ns(clock())
        if n and coalesce_s:
            _nap(doorbell, max(coalesce_s, min(wait or 0, IDLE_WAIT_NS) / 1e9))
        elif wait is None:
            nic.sleep_idle(doorbell, IDLE_SLICE_S)
        elif wait > 0:
            _nap(doorbell, min(wait, IDLE_WAIT_NS) / 1e9)
    if not stopped:
        f[NIC.cpu_ns] = time.process_time_ns() - cpu0


def _post_times(txq, n: int) -> list[int]:
    """The post times (virtual ns) of the ``n`` oldest descriptors of
    ``txq``'s ring (the NIC is its only consumer)."""
    ring = txq.ring
    c = ring.idx[RING.cons]
    return [int(x) for x in txq.vpost[(c + np.arange(n)) & ring.mask]]


def _wire_finishes(
    nic: Nic, txq, rows: list, posts: list[int], upto: int | None = None
) -> list[int]:
    """Virtual wire finishes of ``rows`` (descriptors of ``txq``'s ring, in
    order, posted at ``posts``): each starts when it was posted or when the
    wire is free; stops before the first that would finish after ``upto``."""
    dev = txq.dev.index
    bps, pps, overhead = nic.rate[dev]
    slow = nic.vslow_now
    t = float(nic.wire_t[dev])
    out = []
    for row, post in zip(rows, posts):
        length = row[4]
        per = (length + overhead) * (8e9 / bps) if bps else 0.0
        if pps:
            per = max(per, 1e9 / pps)
        t = max(t, float(post))
        if nic.vslow:
            slow = nic.slow_at(t)
        t += per + slow
        if upto is not None and t > upto:
            break
        out.append(int(t))
    return out


def _run_virtual(nic: Nic, net) -> None:
    """The NIC on the virtual clock (docs/virtual-time.md).

    Its clock is the virtual time of its next completion interrupt: the
    earliest wire finish among the rings' first descriptors (each starts when
    it was posted or when its device's wire is free), plus interrupt
    moderation (``nic_coalesce_us`` of virtual time).  It waits at the
    window until every CPU has reached that time (less the slack), then
    completes every descriptor whose wire finish is not later, at that
    time: the TX clean, BQL, the queue wakes and the send-buffer wakes all
    happen at the interrupt's virtual time, and a CPU they wake resumes no
    earlier.  Each completed skb charges the NIC ``completion_ns``.  With
    nothing in the rings it sleeps on the doorbell without holding GVT; the
    driver that rings it hands it its post time.  Skbs whose wire finish is
    within the run's duration count as delivered in the window (with a
    packet budget, every skb: the window ends at the last wire finish, kept
    in VT_NIC.last_finish).  A slow_nic event slows the packets whose wire
    starts at or after its virtual time (:meth:`Nic.vslow_poll`); a
    lose_one fault loses the first skb of the first interrupt after it.
    """
    vt = net.vcpu(net.ncpus)
    this.vt = vt
    f = net.nic
    rc = net.runctl
    doorbell = net.nic_doorbell
    coalesce = net.cfg.nic_coalesce_us * 1000
    per_skb = net.costs.completion_ns
    end = None if net.cfg.packets else int(net.cfg.duration * 1e9)
    vnic = net.vt_nic
    stopped = False
    while rc[RUNCTL.phase] != PHASE_EXIT and not rc[RUNCTL.abort]:
        nic.vslow_poll()
        heads = []
        for txq in nic.txqs:
            d = txq.ring.peek_batch(1)
            if len(d):
                heads += _wire_finishes(nic, txq, d.tolist(), _post_times(txq, 1))
        if not heads:
            if not stopped and rc[RUNCTL.phase] == PHASE_STOP:
                stopped = True
                f[NIC.cpu_ns] = vt.busy
            vt.sleep()
            nic.sleep_idle(doorbell, IDLE_SLICE_S)
            vt.wake()
            continue
        at = min(heads) + coalesce
        vt.idle_until(at)
        vt.window()
        nic.vslow_poll()  # an event may have happened while this waited
        done = 0
        for txq in nic.txqs:
            rows = txq.ring.peek_batch(nic.batch).tolist()
            posts = _post_times(txq, len(rows))
            fins = _wire_finishes(nic, txq, rows, posts, at)
            if not fins:
                continue
            if rc[RUNCTL.fault_inject] == FAULT_LOSE_ONE:
                # Test-only: lose one skb without a trace (see Nic.poll)
                rc[RUNCTL.fault_inject] = 0
                txq.ring.advance(1)
                rows, posts = rows[1:], posts[1:]
                fins = _wire_finishes(nic, txq, rows, posts, at)
                if not fins:
                    continue
            rows = rows[: len(fins)]
            nbytes = nic._transmit_small(txq, rows, 0, fins)
            if fins[-1] > vnic[VT_NIC.last_finish]:
                vnic[VT_NIC.last_finish] = fins[-1]
            win = net.vt_window
            q = net.ncpus + txq.index
            for row, fin in zip(rows, fins):
                if end is None or fin <= end:
                    win[row[0]] += 1
                    win[q] += 1
                    rc[RUNCTL.nic_delivered_at_stop] += 1
            if eth_tx_clean(txq, len(rows), nbytes, at, net):
                f[NIC.bql_wakes] += 1
            done += len(rows)
        if done:
            vt.charge(per_skb * done)
        nic.wake_after_round(done)
    if not stopped or end is None:  # a budget's run lasts until the last skb is out
        f[NIC.cpu_ns] = vt.busy
    vt.done()


def nic_main(net, host_core: int, supervisor_pid: int) -> None:
    """Entry point of the NIC process (forked by the supervisor); it dies
    with the supervisor and leaves Ctrl-C and SIGHUP to it, as a CPU does."""
    die_with_parent(supervisor_pid)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    # the supervisor forked with these blocked: a Ctrl-C that came meanwhile is
    # dropped now (ignored), a SIGTERM kills quietly
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT, signal.SIGTERM, signal.SIGHUP})
    with contextlib.suppress(OSError):
        os.sched_setaffinity(0, {host_core})
    # The NIC takes no kernel locks: it changes queue state with atomics and
    # schedules qdiscs on the irq CPU's output_queue under its softnet lock.
    nic = Nic(net)
    this.trace = nic.tracer  # the kernel functions the NIC runs record here
    f = net.nic
    rc = net.runctl
    f[NIC.pid] = os.getpid()
    f[NIC.state] = NIC_READY
    while rc[RUNCTL.phase] == PHASE_INIT and not rc[RUNCTL.abort]:
        _nap(net.nic_doorbell, 0.001)  # the supervisor rings it at PHASE_RUN
    f[NIC.state] = NIC_RUN
    # developers: --profile-dir DIR (profile_dir) writes the NIC's cProfile
    # statistics to DIR/nic.prof, beside the emulated CPUs' cpuN.prof
    prof_dir = net.cfg.profile_dir
    run = _run_virtual if nic.virtual else _run
    if prof_dir:
        prof = cProfile.Profile()
        prof.runcall(run, nic, net)
        prof.dump_stats(os.path.join(prof_dir, "nic.prof"))
    else:
        run(nic, net)
    blob = nic.encode_latency()
    if len(blob) <= NIC_BLOB_BYTES:
        off = net.nic_blob_off
        net.region.mm[off : off + len(blob)] = blob
        f[NIC.lat_blob_len] = len(blob)
    f[NIC.state] = NIC_DONE
    os._exit(0)
