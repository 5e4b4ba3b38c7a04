"""The NET_TX half of kernel/softirq.c: do_softirq, __do_softirq, ksoftirqd.

A sender's ``dev_queue_xmit`` runs with BHs disabled; ``local_bh_enable`` →
``do_softirq`` then runs what is pending, and NET_TX (``net_tx_action``) is
the only softirq netq raises.  ``__do_softirq`` runs it, and while it was
raised again meanwhile (a qdisc rescheduled: its quota ran out, its trylock
failed, a completion woke a queue) it restarts, at most MAX_SOFTIRQ_RESTART
passes in all and, from 3.9 (commit c10d73671ad3), while less than
MAX_SOFTIRQ_TIME (2 ms) has passed; what is still pending then is left to
this CPU's ksoftirqd (``wakeup_softirqd``), which the scheduler runs later.
From 4.9 (commit 4cd13c21b207, "softirq: Let ksoftirqd do its job") until
its revert in 2023 (d15121be7485) ``do_softirq`` and ``invoke_softirq`` do
not run softirqs while ksoftirqd is runnable: everything waits for it.

Per profile: 2.6.37 bounds the loop by restarts only; 3.13 adds the 2 ms;
4.19 also defers to a runnable ksoftirqd; 6.18 and 6.19 do not defer.

Where netq differs:

* the time bound is the wall clock of netq's processes, whose packets cost
  some ten times the kernel's: 2 ms covers fewer restarts than in the
  kernel, where MAX_SOFTIRQ_RESTART usually binds first for NET_TX (both
  ends are counted: ``softirq_restart_limit``, ``softirq_time_limit``);
* ``need_resched()`` is never true (the emulated CPU has no scheduler tick);
* ksoftirqd is not a process of its own: the worker runs one pass of it
  (:func:`run_ksoftirqd`) at each scheduling point of its sender, between
  two sendmsg calls, and whenever the sender sleeps or idles: a woken
  ksoftirqd and the sender alternate, as CFS alternates two runnable tasks
  on one CPU;
* the hardirq's ``invoke_softirq`` (irq_exit) on an idle CPU is
  :func:`invoke_softirq`, run by the worker when it idles; the NIC's
  completions raise NET_TX by putting a qdisc on this CPU's output_queue.

State: ``SOFTNET.ksoftirqd_running`` and the counters are this CPU's only
(owner).
"""

from __future__ import annotations

from .core.delay import ndelay
from .core.dev import net_tx_action
from .core.percpu import this
from .core.timekeeping import ktime_get_ns
from .kstructs import SOFTNET
from .tracepoints import SOFTIRQ_ENTRY, SOFTIRQ_EXIT

#: __do_softirq: passes over the pending softirqs before ksoftirqd takes over
MAX_SOFTIRQ_RESTART = 10

_OQH, _OQT = SOFTNET.oq_head, SOFTNET.oq_tail
_RUNNING = SOFTNET.ksoftirqd_running


def local_softirq_pending() -> bool:
    """NET_TX is pending: this CPU's output_queue holds a qdisc (the
    kernel's pending bit is raised by __netif_reschedule with it)."""
    sd = this.sd
    return bool(sd[_OQH] != sd[_OQT])


def ksoftirqd_running() -> bool:
    """ksoftirqd_running(pending) of 4.9 .. 2023: this CPU's ksoftirqd is
    runnable (NET_TX is not in SOFTIRQ_NOW_MASK).  False under profiles
    without the rule (before 4.9, after the 2023 revert)."""
    return bool(this.net.profile.ksoftirqd_defer and this.sd[_RUNNING])


def do_softirq() -> bool:
    """local_bh_enable → do_softirq: run the pending softirqs now, unless
    ksoftirqd is runnable and the profile leaves them to it (counted in
    ``softirq_deferred``).  Returns whether __do_softirq ran."""
    if not local_softirq_pending():
        return False
    if ksoftirqd_running():
        this.sd[SOFTNET.softirq_deferred] += 1
        return False
    __do_softirq()
    return True


def invoke_softirq() -> bool:
    """irq_exit → invoke_softirq: the same test as do_softirq (4.9 .. 2023),
    then __do_softirq.  netq calls it where an idle CPU would take the
    NIC's interrupt."""
    return do_softirq()


def __do_softirq() -> None:
    """Run NET_TX; while it was raised again, restart, until the pass that
    leaves it pending is the MAX_SOFTIRQ_RESTART-th or MAX_SOFTIRQ_TIME has
    passed (3.9+: the profile's ``softirq_time_ns``, tested first, as
    ``time_before(jiffies, end) && !need_resched() && --max_restart``
    does); then wake ksoftirqd.  So a pass count per call is 1 .. 10 and
    restarts are passes - 1."""
    sd = this.sd
    limit_ns = this.net.profile.softirq_time_ns
    end = ktime_get_ns() + limit_ns
    max_restart = MAX_SOFTIRQ_RESTART
    sd[SOFTNET.softirq_runs] += 1
    c = this.net.costs.softirq_ns
    if c:
        ndelay(c)
    tr = this.trace
    if tr is not None:  # irq:softirq_entry
        tr.emit(SOFTIRQ_ENTRY)
    passes = 0
    while True:
        passes += 1
        net_tx_action()
        if not local_softirq_pending():
            break
        if limit_ns and ktime_get_ns() >= end:
            sd[SOFTNET.softirq_time_limit] += 1
            wakeup_softirqd()
            break
        max_restart -= 1
        if not max_restart:
            sd[SOFTNET.softirq_restart_limit] += 1
            wakeup_softirqd()
            break
        sd[SOFTNET.softirq_restarts] += 1
    if tr is not None:  # irq:softirq_exit: a = passes
        tr.emit(SOFTIRQ_EXIT, passes)


def wakeup_softirqd() -> None:
    """Make this CPU's ksoftirqd runnable (wake_up_process; a no-op when it
    already is)."""
    sd = this.sd
    if not sd[_RUNNING]:
        sd[_RUNNING] = 1
        sd[SOFTNET.ksoftirqd_wakeups] += 1


def run_ksoftirqd() -> bool:
    """One turn of this CPU's ksoftirqd, if it is runnable: run_ksoftirqd()
    (one __do_softirq, whose own restart loop applies) when softirqs are
    pending; when none are left it goes back to sleep
    (ksoftirqd_should_run() is false; smpboot_thread_fn schedules out).
    Returns whether it ran __do_softirq."""
    sd = this.sd
    if not sd[_RUNNING]:
        return False
    ran = False
    if local_softirq_pending():
        sd[SOFTNET.ksoftirqd_runs] += 1
        __do_softirq()
        ran = True
    if not local_softirq_pending():
        sd[_RUNNING] = 0
    return ran
