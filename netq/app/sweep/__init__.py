"""Load studies: one workload swept over senders, locking strategies, lock
fairness, TX queues, XPS maps, kernel generations, qdiscs and lock waiting,
one supervised multi-process run per point.

    python scripts/sweep.py STUDY [--out DIR] [--duration S] [--repeat N]
                                  [--bounce NS[,NS...]] [--quick] [--resume]

Studies (``--list`` prints them):

``contention``  one TX queue (tg3-like: pfifo_fast, ring 256), 1 UDP socket
                per sender flooding 1000-byte packets; senders = emulated CPUs
                in {1, 2, 4, 8}; five series, each named by what ran
                (``series``): rootlock 3.13 (a what-if: busylock is older
                than every profile), busylock 3.13 (locked pfifo_fast),
                nolock 6.18 (pfifo_fast is TCQ_F_NOLOCK from 4.16, whatever
                the strategy), busylock 6.18 and defer 6.19 on pfifo (the
                locked qdisc they meet) x lock fairness {fifo, unfair};
                emulated costs of the busylock
                preset (enqueue 1000 ns, dequeue 1000 ns, driver xmit 2000 ns)
                and ``bounce_ns`` in {0, 2000} (the cost of taking a lock, or
                pushing on a defer_list, that another CPU touched last).
                8 senders on a 2-core host is intentional: oversubscription
                is part of what is measured, and every row says
                ``shared_cores``.
``xps``         CPUs {1, 2, 4} x TX queues {2, 4} x XPS {1:1 (CPU i -> queue
                i mod n), none (flows hashed), shared (every CPU in every
                queue's mask)}; 4 connected UDP sockets per CPU flooding
                1000-byte packets (the ``xps`` preset's traffic), busylock,
                fifo locks, bounce_ns {0, 2000}.
``queues``      2 CPUs, TX queues {1, 2, 4, 8}, XPS 1:1 vs none, the same
                traffic as ``xps``, bounce_ns {0, 2000}.
``generations`` 6.18 against 6.19 (the defer_list, commit 100dfa74cad9)
                on one TX queue: senders in {1, 2, 4, 8} x (busylock, 6.18)
                / (defer, 6.19) x qdisc {pfifo_fast (TCQ_F_NOLOCK in both:
                neither busylock nor the defer_list meets it, so the pair
                measures the same code), pfifo (locked, bypasses an empty
                qdisc), fq (locked, never bypasses: the qdisc of the
                kernel's own defer_list measurement)} x lock
                waiting {adaptive (spin briefly, then sleep: netq's default),
                spin (waiters spin as kernel spinlocks do, yielding the core
                when it is shared)}; fifo locks; the ``contention`` workload
                and costs with ``bounce_ns`` 1000 (the ``generations``
                preset's) and an SO_SNDBUF of 131072 bytes: a 1000-byte
                packet charges 1576 bytes (truesize), so a socket has at most
                83 skbs in flight, under fq's per-flow limit of 100 (a
                flooding socket is throttled by its send buffer, not dropped
                by fq).  The table and the JSON (``ratios``) give, per qdisc,
                lock waiting and senders, 6.19 / 6.18 (defer / busylock on
                pfifo and fq) for pps and CPU per packet, beside the
                kernel's figures
                (:mod:`netq.app.figures`: 1.81x pps, 16 -> 29 Mpps; system
                CPU 52% -> 24%).

``--quick`` runs fewer points (contention: 1 and 4 senders, bounce 0; xps: 1
and 2 CPUs on 2 queues, bounce 0; queues: 1 and 4 queues, bounce 0;
generations: 1 and 4 senders, adaptive lock waiting only, bounce 1000) for
0.3 s each, once: a whole study takes well under a minute.  ``--duration`` and
``--repeat`` override the study's defaults (also with ``--quick``), as does
``--bounce``.  Repetitions are run round-robin (all points once, then all
again), so a drift of the host's speed touches every point alike; repetition
``r`` uses seed ``r + 1`` (the hash secret, so hashed flows land differently).

Output, in ``--out`` (default ``./netq-studies``):

``STUDY.csv``   one row per point and repetition, appended and flushed as
                soon as the point finishes (the columns: :data:`COLUMNS`);
``STUDY.json``  ``rows`` (the CSV rows of this plan, typed), ``medians`` (per
                point, over the repetitions whose status is ok), ``machine``,
                ``command`` (the exact argv), ``commands`` (with --resume,
                also the earlier ones whose rows were kept), ``parameters``;
                generations also ``ratios`` (:func:`ratios`) and ``kernel``
                (:data:`netq.app.figures.KERNEL_DEFER`); written at the end, and marked
                ``complete: false`` after an interruption;
``STUDY.png``   the plots (:mod:`netq.app.sweep.plot` draws them;
                ``scripts/plot.py`` redraws them from the JSON).

``--resume`` keeps the rows already in ``STUDY.csv`` and skips every point
and repetition found there with the same parameters (duration included),
whatever its status: a failed point is a result too.  Without ``--resume`` the
CSV is started afresh.

A point whose run does not end ``ok`` (a stall, a worker fault, a broken
invariant) is recorded with its status and the first fault, and the sweep
goes on; the exit code is then 1.  Ctrl-C ends the running point (the
supervisor stops its workers and unlinks its IPC objects), keeps every row
already written, writes the JSON as incomplete and exits 130; SIGTERM: 143.
Bad arguments: one line on stderr, exit 2, nothing created.

Needs the ``plot`` extra (matplotlib, tqdm): ``pip install '.[plot]'``.

The package, one job per module: :mod:`.rows` (the columns, the CSV and
resuming), :mod:`.studies` (the points of each study and their
configurations), :mod:`.runner` (one point, the sweep, STUDY.json),
:mod:`.table` (medians, ratios, the text table), :mod:`.plot` (the PNG),
:mod:`.cli` (the command line); ``scripts/sweep.py`` and ``scripts/plot.py``
are their entry points.
"""

from __future__ import annotations

from .cli import main, parse_args
from .rows import COLUMNS, FIGURES, KEY, RUN, TEXT, Usage, read_rows, write_rows
from .runner import run_point, sweep
from .studies import STUDIES, Options, Point, Study, xps_map
from .table import medians, ratios, table

__all__ = [
    "COLUMNS",
    "FIGURES",
    "KEY",
    "RUN",
    "STUDIES",
    "TEXT",
    "Options",
    "Point",
    "Study",
    "Usage",
    "main",
    "medians",
    "parse_args",
    "ratios",
    "read_rows",
    "run_point",
    "sweep",
    "table",
    "write_rows",
    "xps_map",
]
