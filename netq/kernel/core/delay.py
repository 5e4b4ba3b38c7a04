"""include/linux/delay.h's ndelay: the cost of an operation.

With the wall clock it busy-waits ``ns`` (an emulated cost, config
``costs``: work the kernel does and Python does not, so that lock hold
times keep the kernel's proportions); with the virtual clock it charges
``ns`` to this CPU's clock (netq.kernel.costs) and takes no host time.
"""

from __future__ import annotations

import time

from .percpu import this


def ndelay(ns: int) -> None:
    vt = this.vt
    if vt is not None:
        vt.now += ns
        vt.busy += ns
        return
    if ns:
        end = time.perf_counter_ns() + ns
        while time.perf_counter_ns() < end:
            pass
