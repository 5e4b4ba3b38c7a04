"""Byte queue limits: struct dql (lib/dynamic_queue_limits.c, 3.3+).

A TX queue's dql bounds the bytes sitting in its driver ring: the driver
adds what it posts (``dql_queued`` from ``netdev_tx_sent_queue``), the
completion path removes what the NIC sent (``dql_completed`` from
``netdev_tx_completed_queue``) and recomputes the limit: grow it by what was
completed when the ring ran dry while over the limit (starvation), shrink it
by the smallest slack seen over ``slack_hold_time`` when it never ran dry.
``dql_avail`` < 0 stops the queue (``__QUEUE_STATE_STACK_XOFF``), so the
backlog stays in the qdisc, where it can be scheduled, and not in the ring.
It is also how much a qdisc run may dequeue in bulk
(``qdisc_avail_bulklimit``).

The fields live in the TX queue's record (``netq.kernel.kstructs.NETDEV_QUEUE``):
``dql_num_queued`` and ``dql_last_obj_cnt`` are written by the driver under
the queue's _xmit_lock, the rest by the NIC process, which plays the
completion handler; each side only reads the other's words, as in the
kernel (the two halves of struct dql sit on separate cache lines).

Versions: the starvation test is 3.5's ("bql: Avoid unneeded limit
decrement"): ``all_prev_completed = AFTER_EQ(completed, prev_num_queued)``,
true also when the completions have just caught up with what was queued at
the previous completion; 3.3 and 3.4 tested ``POSDIFF(completed,
prev_num_queued)``, a strict "after".  No profile needs the old test: the
only profile older than 3.5, 2.6.37, has no BQL.

Differences: counters are int64 and do not wrap (``AFTER_EQ``'s signed
difference is a plain ``>=``); time is monotonic ns (``slack_hold_time`` 1 s
= HZ jiffies); the 2024 stall detector is not modelled.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..kstructs import NETDEV_QUEUE as _Q

if TYPE_CHECKING:
    from ..net_namespace import Words

#: include/linux/dynamic_queue_limits.h: (UINT_MAX / 2) - DQL_MAX_OBJECT
DQL_MAX_OBJECT = (2**32 - 1) // 16
DQL_MAX_LIMIT = (2**32 - 1) // 2 - DQL_MAX_OBJECT
UINT_MAX = 2**32 - 1
#: slack_hold_time: netdev_queue_init uses HZ (one second)
SLACK_HOLD_NS = 1_000_000_000

_QUEUED, _LAST = _Q.dql_num_queued, _Q.dql_last_obj_cnt
_ADJ, _LIMIT, _DONE = _Q.dql_adj_limit, _Q.dql_limit, _Q.dql_num_completed
_PREV_OV, _PREV_Q, _PREV_LAST = (
    _Q.dql_prev_ovlimit,
    _Q.dql_prev_num_queued,
    _Q.dql_prev_last_obj_cnt,
)
_SLACK, _SLACK_T = _Q.dql_lowest_slack, _Q.dql_slack_start
_MAX, _MIN = _Q.dql_max_limit, _Q.dql_min_limit


def _posdiff(a: int, b: int) -> int:
    return a - b if a > b else 0


def dql_init(f: Words, now: int, max_limit: int = DQL_MAX_LIMIT, min_limit: int = 0) -> None:
    """dql_init(): bounds, then dql_reset()."""
    f[_MAX] = max_limit
    f[_MIN] = min_limit
    dql_reset(f, now)


def dql_reset(f: Words, now: int) -> None:
    """dql_reset(): every dynamic value back to zero (the limit too)."""
    f[_LIMIT] = f[_MIN]
    f[_QUEUED] = f[_DONE] = f[_LAST] = 0
    f[_PREV_Q] = f[_PREV_LAST] = f[_PREV_OV] = 0
    f[_ADJ] = f[_LIMIT]
    f[_SLACK] = UINT_MAX
    f[_SLACK_T] = now


def dql_queued(f: Words, count: int) -> None:
    """dql_queued(): ``count`` bytes posted to the ring (driver, _xmit_lock).
    The ethernet driver's per-packet path inlines it (eth_start_xmit)."""
    f[_LAST] = count
    f[_QUEUED] += count


def dql_avail(f: Words) -> int:
    """Bytes that may still be queued (negative: over the limit)."""
    return f[_ADJ] - f[_QUEUED]


def dql_completed(f: Words, count: int, now: int) -> None:
    """dql_completed(): record ``count`` completed bytes and recompute the
    limit (the completion handler; netq's NIC process).

    3.5+: ``all_prev_completed`` is ``AFTER_EQ(completed, prev_num_queued)``,
    so when the completions reach exactly what was queued at the previous
    completion and the queue was over its limit then, the queue counts as
    starved (the limit grows by ``prev_ovlimit``) instead of entering the
    shrink branch, which requires ``!all_prev_completed``."""
    num_queued = f[_QUEUED]
    num_completed = f[_DONE]
    if count > num_queued - num_completed:
        raise AssertionError(
            f"BUG: dql_completed {count} bytes, {num_queued - num_completed} queued"
        )
    completed = num_completed + count
    limit = f[_LIMIT]
    prev_ovlimit = f[_PREV_OV]
    prev_num_queued = f[_PREV_Q]
    ovlimit = _posdiff(num_queued - num_completed, limit)
    inprogress = num_queued - completed
    prev_inprogress = prev_num_queued - num_completed
    all_prev_completed = completed >= prev_num_queued  # AFTER_EQ (3.5+)

    if (ovlimit and not inprogress) or (prev_ovlimit and all_prev_completed):
        # Starved: over the limit and the ring ran dry (or may have): grow by
        # what was sent and completed in the interval plus the old overrun.
        limit += _posdiff(completed, prev_num_queued) + prev_ovlimit
        f[_SLACK_T] = now
        f[_SLACK] = UINT_MAX
    elif inprogress and prev_inprogress and not all_prev_completed:
        # Busy the whole interval: shrink by the smallest slack seen over
        # slack_hold_time.
        slack = _posdiff(limit + prev_ovlimit, 2 * (completed - num_completed))
        slack_last_objs = _posdiff(f[_PREV_LAST], prev_ovlimit) if prev_ovlimit else 0
        slack = max(slack, slack_last_objs)
        if slack < f[_SLACK]:
            f[_SLACK] = slack
        if now - f[_SLACK_T] > SLACK_HOLD_NS:
            limit = _posdiff(limit, f[_SLACK])
            f[_SLACK_T] = now
            f[_SLACK] = UINT_MAX

    limit = min(max(limit, f[_MIN]), f[_MAX])
    if limit != f[_LIMIT]:
        f[_LIMIT] = limit
        ovlimit = 0
        if limit > f[_Q.dql_limit_max_seen]:
            f[_Q.dql_limit_max_seen] = limit
    f[_ADJ] = limit + completed
    f[_PREV_OV] = ovlimit
    f[_PREV_LAST] = f[_LAST]
    f[_DONE] = completed
    f[_PREV_Q] = num_queued


def dql_inflight(f: Words) -> int:
    """Bytes queued to the ring and not completed (sysfs ``inflight``)."""
    return f[_QUEUED] - f[_DONE]
