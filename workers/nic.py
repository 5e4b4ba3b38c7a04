"""The NIC: drains every TX ring at line rate, completes descriptors, wakes
stopped queues, and records what reached the wire.

One process plays the hardware of every physical device.  Each round it
visits the TX rings in turn (the NIC's TX arbiter), takes up to ``nic_batch``
descriptors from a ring whose device's wire is free, and works on the batch
with numpy: wire time (line rate in bit/s with per-packet overhead, and/or
packets/s), enqueue→wire latency (into an HDR histogram), per-flow order,
per-queue counters, completion locality.  Then it completes the batch (the
ring's consumer index is the "clean" index) and, as a driver's TX-completion
handler would on the queue's interrupt CPU, wakes a stopped queue once
``wake_thresh`` descriptors are free: ``netif_tx_wake_queue`` →
``__netif_schedule`` on that CPU's output_queue.

Difference from hardware: completion happens when the batch is accounted,
not when each packet's last bit leaves; the latency uses the computed wire
finish time, so it is not affected.
"""
from __future__ import annotations

import time

import numpy as np
from hdrh.histogram import HdrHistogram

from shm.kstructs import NETDEV_QUEUE, NIC, QUEUE_STATE_DRV_XOFF, SOCK

from netq.core.netdevice import netif_tx_wake_queue

#: latency histogram: 1 ns .. 60 s, 3 significant digits
LAT_MIN_NS, LAT_MAX_NS, LAT_DIGITS = 1, 60_000_000_000, 3

_XOFF = 1 << QUEUE_STATE_DRV_XOFF


class Nic:
    """The NIC's state; :meth:`poll` does one round over all TX rings."""

    def __init__(self, net) -> None:
        self.net = net
        self.batch = net.cfg.nic_batch
        self.txqs = [q for q in net.txqs if q.ring is not None]
        # per device: wire clock and per-packet costs
        self.wire_t = {d.index: 0 for d in net.devices}
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

    def poll(self, now: int | None = None) -> int:
        """Transmit and complete what the rings hold; returns packets sent."""
        if now is None:
            now = time.perf_counter_ns()
        sent = 0
        for txq in self.txqs:
            dev = txq.dev.index
            if self.wire_t[dev] > now:
                continue  # the wire of this device is still busy
            d = txq.ring.peek_batch(self.batch)
            if len(d):
                self._transmit(txq, d, now)
                txq.ring.advance(len(d))
                sent += len(d)
            if txq.f[NETDEV_QUEUE.state] & _XOFF and txq.ring.free() >= txq.wake_thresh:
                if netif_tx_wake_queue(txq, self.net):
                    txq.f[NETDEV_QUEUE.tx_restart] += 1
                    self.f[NIC.wakes] += 1
        return sent

    def _transmit(self, txq, d: np.ndarray, now: int) -> None:
        lens = d[:, 4]
        bps, pps, overhead = self.rate[txq.dev.index]
        start = max(self.wire_t[txq.dev.index], now)
        if bps or pps:
            per = np.zeros(len(d), dtype=np.float64)
            if bps:
                per = np.maximum(per, (lens + overhead) * (8e9 / bps))
            if pps:
                per = np.maximum(per, 1e9 / pps)
            finish = start + np.cumsum(per).astype(np.int64)
            self.wire_t[txq.dev.index] = int(finish[-1])
        else:
            finish = np.full(len(d), now, dtype=np.int64)
        nbytes = int(lens.sum())
        f = txq.f
        f[NETDEV_QUEUE.nic_packets] += len(d)
        f[NETDEV_QUEUE.nic_bytes] += nbytes
        local = int((d[:, 0] == f[NETDEV_QUEUE.irq_cpu]).sum())
        f[NETDEV_QUEUE.completions_local] += local
        f[NETDEV_QUEUE.completions_remote] += len(d) - local
        nic = self.f
        nic[NIC.delivered] += len(d)
        nic[NIC.delivered_bytes] += nbytes
        if self.record_latency:
            lat = finish - d[:, 6]
            vals, counts = np.unique(np.clip(lat, LAT_MIN_NS, LAT_MAX_NS), return_counts=True)
            rec = self.hist.record_value
            for v, c in zip(vals.tolist(), counts.tolist()):
                rec(v, c)
        self._check_order(d[:, 2], d[:, 3], txq.index)

    def _check_order(self, sk: np.ndarray, seq: np.ndarray, queue: int) -> None:
        """Per-flow order: within a flow, sequence numbers only grow."""
        valid = sk >= 0
        if not valid.all():
            sk, seq = sk[valid], seq[valid]
        if not len(sk):
            return
        order = np.argsort(sk, kind="stable")
        sks, seqs = sk[order], seq[order]
        same = sks[1:] == sks[:-1]
        first = np.concatenate(([True], ~same))
        last = np.concatenate((~same, [True]))
        fs = sks[first]
        changed = (self.last_queue[fs] >= 0) & (self.last_queue[fs] != queue)
        if changed.any():
            self.moved[fs[changed]] = True
            self.f[NIC.flow_queue_changes] += int(changed.sum())
        self.last_queue[fs] = queue
        bad = np.zeros(len(sks), dtype=bool)
        bad[1:] = same & (seqs[1:] <= seqs[:-1])
        bad[first] = seqs[first] <= self.last_seq[fs]
        if bad.any():
            badsk = sks[bad]
            moved = self.moved[badsk]
            self.f[NIC.reorders_moved] += int(moved.sum())
            self.f[NIC.reorders] += int((~moved).sum())
        self.last_seq[sks[last]] = np.maximum(self.last_seq[sks[last]], seqs[last])
        # completions per socket (the sockets' wmem accounting)
        uniq, counts = np.unique(sks, return_counts=True)
        w = self.net.words
        base, stride = self.sock_base + SOCK.completed, self.sock_stride
        for s, c in zip(uniq.tolist(), counts.tolist()):
            w[base + s * stride] += c

    def encode_latency(self) -> bytes:
        """The histogram, HdrHistogram-encoded (base64 text), for the report."""
        return self.hist.encode()
