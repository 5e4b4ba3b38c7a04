"""include/linux/timekeeping.h: the time the kernel model reads.

``ktime_get_ns()`` is the run's clock: on the wall clock the host's
monotonic clock (``time.perf_counter_ns``, which the traffic generator also
stamps skbs with); on the virtual clock (docs/virtual-time.md) this CPU's
virtual clock, the time of its next action.  Every time the kernel model
compares (MAX_SOFTIRQ_TIME, fq's flow_refill_delay, the 6.19 TX queue
cache's txq_reselection_ms, net_ratelimit's window) goes through it, so
that on the virtual clock they count the emulated machine's time, not the
host's (which runs a hundred or a thousand times slower).  The kernel reads
jiffies for most of these; netq keeps ns.
"""

from __future__ import annotations

import time

from .percpu import this


def ktime_get_ns() -> int:
    vt = this.vt
    if vt is not None:
        return vt.now
    return time.perf_counter_ns()
