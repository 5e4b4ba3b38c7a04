"""A small compiled helper: real atomics and the lock/ring fast paths in C.

Why: on the development VM a Python-level ``spin_lock``+``spin_unlock`` with
lock_stat bookkeeping costs 6-12x a bare semaphore pair, and a read-modify-
write on shared memory cannot be atomic from Python at all.  The kernel's
own answers are a handful of instructions; this module provides them as C
functions (compiled once with cffi, API mode) operating on the very same
shared words and the very same POSIX semaphores (opened with ``sem_open``),
so the Python and C paths interoperate and either can be used per process.

What is here:
* ``__atomic`` builtins on int64 words: test_and_set_bit, test_and_clear_bit,
  fetch_add, cmpxchg, xchg (used by :mod:`shm.atomic`, and by the lock-free
  ``defer_list`` push of later kernels);
* the uncontended paths of :class:`shm.lock.SpinLock` (trylock with its
  lock_stat bookkeeping, unlock with hold time and the fifo handoff) — the
  contended wait stays in Python;
* the NIC's per-descriptor work on a TX ring (``netq_nic_tx``: wire time,
  latency, flow order, socket completions; workers/nic.py keeps the same
  work in Python and numpy, and tests/test_nic.py proves the three agree);
* a second, small CPython extension (:data:`RingOps`, :data:`LockOps`,
  :data:`WordsOps`): the ring's produce/consume/batches and the
  lock/unlock/trylock calls as methods of C types, because there the Python
  frame and the cffi call around a ~50 ns operation cost more than the
  operation (issue 17); and the records' integer index read and write,
  which memoryview does through its generic item path (format dispatch,
  suboffsets): ~15 ns saved per read, write or ``+=``, ~30 of which a
  packet makes.  The lock type calls the cffi functions above; none holds
  kernel logic.

Build: the first import compiles the extensions into a per-user cache
(``$NETQ_NATIVE_DIR`` or ``~/.cache/netq``), keyed by a hash of the source
and the Python version; later imports load them.  If there is no compiler, or
``NETQ_NATIVE=0`` is set, :data:`lib` is None and netq runs its pure-Python
paths (hashed-semaphore atomics as arch/parisc does); the run's setup says
which backend was used.  If only the second extension fails to build, rings
and lock calls use their Python methods around the cffi functions.
"""

from __future__ import annotations

import hashlib
import importlib.machinery
import importlib.util
import os
import sys
import tempfile
import types
from typing import Any

from .lockrec import LOCK, MAX_WAITERS, STAT
from .ringrec import DESC, RING

CDEF = """
typedef struct { void *sem; int64_t *rec; int64_t *st; int64_t cpu; void **hand;
                 int64_t bounce_ns; int64_t remote_ns; int64_t *node; } netq_lk;
int64_t netq_now(void);
void netq_ndelay(int64_t ns);
int64_t netq_test_and_set_bit(int64_t *p, int bit);
int64_t netq_test_and_clear_bit(int64_t *p, int bit);
int64_t netq_fetch_add(int64_t *p, int64_t v);
int64_t netq_cmpxchg(int64_t *p, int64_t old, int64_t new);
int64_t netq_xchg(int64_t *p, int64_t v);
void *netq_sem_open(const char *name);
int64_t netq_trylock_unfair(netq_lk *l);
int64_t netq_unlock_unfair(netq_lk *l);
int64_t netq_lock_fifo(netq_lk *l);
int64_t netq_trylock_fifo(netq_lk *l);
int64_t netq_unlock_fifo(netq_lk *l);
void netq_fence(void);
typedef struct { int64_t *idx; int64_t *slots; int64_t mask; int64_t q; int64_t dev;
                 double ns_per_byte; double min_ns; int64_t overhead;
                 int64_t *qf; int64_t qoff[5]; } netq_txr;
typedef struct { int64_t *wire_t; int64_t *by_cpu; int64_t ncpus; int64_t *sock; int64_t sock_stride;
                 int64_t off_done; int64_t off_done_bytes; int64_t truesize;
                 int64_t *last_seq; int64_t *last_queue; int8_t *moved; int64_t nsock;
                 int64_t *lat; int64_t *nicf; int64_t noff[5]; } netq_nicw;
int64_t netq_nic_tx(netq_txr *r, netq_nicw *w, int64_t limit, int64_t now, int64_t slow,
                    int64_t lat_at, int64_t *out);
int64_t netq_nic_scan(netq_txr **rings, int64_t n, int64_t *wire_t, int64_t now,
                      int64_t *ready);
"""

SOURCE = r"""
#include <errno.h>
#include <fcntl.h>
#include <semaphore.h>
#include <stdint.h>
#include <time.h>

/* word indices, generated from the Python records */
%(defines)s

#define NO_CPU (-1)

/* one lock as seen by one CPU: its semaphore, record, stats row, the CPU,
   and (fifo) every CPU's handoff semaphore */
typedef struct { void *sem; int64_t *rec; int64_t *st; int64_t cpu; void **hand;
                 int64_t bounce_ns; int64_t remote_ns; int64_t *node; } netq_lk;

int64_t netq_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

int64_t netq_test_and_set_bit(int64_t *p, int bit) {
    return (__atomic_fetch_or(p, (int64_t)1 << bit, __ATOMIC_SEQ_CST) >> bit) & 1;
}
int64_t netq_test_and_clear_bit(int64_t *p, int bit) {
    return (__atomic_fetch_and(p, ~((int64_t)1 << bit), __ATOMIC_SEQ_CST) >> bit) & 1;
}
int64_t netq_fetch_add(int64_t *p, int64_t v) {
    return __atomic_fetch_add(p, v, __ATOMIC_SEQ_CST);
}
int64_t netq_cmpxchg(int64_t *p, int64_t old, int64_t new) {
    __atomic_compare_exchange_n(p, &old, new, 0, __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST);
    return old; /* the value found */
}
int64_t netq_xchg(int64_t *p, int64_t v) {
    return __atomic_exchange_n(p, v, __ATOMIC_SEQ_CST);
}

void *netq_sem_open(const char *name) {
    sem_t *s = sem_open(name, 0);
    return s == SEM_FAILED ? 0 : (void *)s;
}

/* busy-wait: an emulated cost */
void netq_ndelay(int64_t ns) {
    if (ns <= 0) return;
    int64_t end = netq_now() + ns;
    while (netq_now() < end) ;
}

/* lock_stat bookkeeping of an acquisition; the caller holds the lock.  An
   acquisition after another CPU held the lock pays the emulated cache-line
   bounce (the lock word and the data it protects travel to this CPU). */
static inline void got(netq_lk *l) {
    int64_t *rec = l->rec, *st = l->st, cpu = l->cpu;
    st[S_ACQ]++;
    int64_t last = rec[L_LAST];
    if (last != cpu) {
        rec[L_LAST] = cpu;
        if (last != NO_CPU) {  /* a first acquisition moves nothing */
            st[S_ACQB]++;
            int64_t cost = l->bounce_ns;
            if (l->remote_ns && l->node[last] != l->node[cpu])
                cost += l->remote_ns;
            if (cost) netq_ndelay(cost);
        }
    }
    rec[L_OWNER] = cpu;
    rec[L_TACQ] = netq_now();
}

static inline void hold_time(int64_t *rec, int64_t *st) {
    int64_t h = netq_now() - rec[L_TACQ];
    st[S_HTOT] += h;
    if (h > st[S_HMAX]) st[S_HMAX] = h;
    if (st[S_HMIN] < 0 || h < st[S_HMIN]) st[S_HMIN] = h;
}

/* 0: acquired; 1: busy (nothing changed) */
int64_t netq_trylock_unfair(netq_lk *l) {
    if (sem_trywait((sem_t *)l->sem) != 0) return 1;
    got(l);
    return 0;
}

int64_t netq_unlock_unfair(netq_lk *l) {
    hold_time(l->rec, l->st);
    l->rec[L_OWNER] = NO_CPU;
    sem_post((sem_t *)l->sem);
    return -1;
}

/* The guard (the lock's own semaphore) protects the waiter queue; it is held
   for a few word updates.  A bounded wait lets Python check the abort word. */
static int guard(sem_t *g) {
    struct timespec ts;
    if (sem_trywait(g) == 0) return 0;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_nsec += 50000000;
    if (ts.tv_nsec >= 1000000000) { ts.tv_sec++; ts.tv_nsec -= 1000000000; }
    while (sem_timedwait(g, &ts) != 0) {
        if (errno != EINTR) return -1;
    }
    return 0;
}

/* 0: acquired.  n > 0: enqueued with n CPUs ahead (holder included); the
   caller waits for the handoff.  -1: guard wait timed out (retry).
   -2: queue full (nothing changed). */
int64_t netq_lock_fifo(netq_lk *l) {
    sem_t *g = (sem_t *)l->sem;
    int64_t *rec = l->rec, cpu = l->cpu;
    if (guard(g)) return -1;
    if (rec[L_OWNER] == NO_CPU && rec[L_QH] == rec[L_QT]) {
        got(l);
        sem_post(g);
        return 0;
    }
    int64_t tail = rec[L_QT];
    int64_t ahead = 1 + tail - rec[L_QH];
    if (ahead > MAX_WAITERS) { sem_post(g); return -2; }
    rec[L_QC + tail %% MAX_WAITERS] = cpu;
    rec[L_QT] = tail + 1;
    sem_post(g);
    return ahead;
}

/* 0: acquired; 1: not free; -1: guard timeout */
int64_t netq_trylock_fifo(netq_lk *l) {
    sem_t *g = (sem_t *)l->sem;
    int64_t *rec = l->rec;
    if (guard(g)) return -1;
    if (rec[L_OWNER] == NO_CPU && rec[L_QH] == rec[L_QT]) {
        got(l);
        sem_post(g);
        return 0;
    }
    sem_post(g);
    l->st[S_TRYF]++;
    return 1;
}

/* Release; hand over to the oldest waiter.  Returns the CPU handed to, -1 if
   the lock is now free, -3 on a guard timeout (nothing changed: retry). */
int64_t netq_unlock_fifo(netq_lk *l) {
    sem_t *g = (sem_t *)l->sem;
    int64_t *rec = l->rec;
    if (guard(g)) return -3;
    hold_time(rec, l->st);
    int64_t head = rec[L_QH];
    if (head != rec[L_QT]) {
        int64_t nxt = rec[L_QC + head %% MAX_WAITERS];
        rec[L_QH] = head + 1;
        rec[L_OWNER] = nxt;
        rec[L_HANDED] = netq_now();
        sem_post(g);
        sem_post((sem_t *)l->hand[nxt]);
        return nxt;
    }
    rec[L_OWNER] = NO_CPU;
    sem_post(g);
    return -1;
}


void netq_fence(void) { __atomic_thread_fence(__ATOMIC_SEQ_CST); }

/* The NIC's per-descriptor work on one TX ring (workers/nic.py,
   Nic._transmit_small, word for word): up to ``limit`` descriptors from the
   ring's consumer index, not consumed (the caller's TX clean advances).
   Wire finish times at line rate from max(wire clock, now); per-CPU
   deliveries; the latency of each (finish - tstamp) into w->lat from
   ``lat_at`` (the caller keeps room for ``limit``; lat_at < 0: not
   recorded); per-flow order; completions on the socket's words.  Counts
   into the queue's words (r->qf at r->qoff: its irq CPU, read; nic_packets,
   nic_bytes, completions_local, completions_remote) and the NIC's (w->nicf
   at w->noff: delivered, delivered_bytes, reorders, reorders_moved,
   flow_queue_changes); the offsets come from the kernel model's records.
   out: n, bytes, completions on the irq CPU, reorders, reorders of moved
   flows, flow queue changes.  Returns n. */
typedef struct { int64_t *idx; int64_t *slots; int64_t mask; int64_t q; int64_t dev;
                 double ns_per_byte; double min_ns; int64_t overhead;
                 int64_t *qf; int64_t qoff[5]; } netq_txr;
typedef struct { int64_t *wire_t; int64_t *by_cpu; int64_t ncpus; int64_t *sock; int64_t sock_stride;
                 int64_t off_done; int64_t off_done_bytes; int64_t truesize;
                 int64_t *last_seq; int64_t *last_queue; int8_t *moved; int64_t nsock;
                 int64_t *lat; int64_t *nicf; int64_t noff[5]; } netq_nicw;

int64_t netq_nic_tx(netq_txr *r, netq_nicw *w, int64_t limit, int64_t now, int64_t slow,
                    int64_t lat_at, int64_t *out) {
    int64_t c = r->idx[RING_CONS];
    int64_t n = __atomic_load_n(&r->idx[RING_PROD], __ATOMIC_ACQUIRE) - c;
    if (n > limit) n = limit;
    if (n <= 0) { for (int i = 0; i < 6; i++) out[i] = 0; return 0; }
    int64_t dev = r->dev, q = r->q, irq = r->qf[r->qoff[0]];
    double bpsn = r->ns_per_byte, ppsn = r->min_ns;
    int64_t ovh = r->overhead;
    int paced = bpsn > 0 || ppsn > 0 || slow;
    int64_t wt = w->wire_t[dev];
    double t = (double)(wt > now ? wt : now);
    int64_t nbytes = 0, local = 0, reo = 0, reo_moved = 0, changes = 0;
    for (int64_t i = 0; i < n; i++) {
        const int64_t *d = r->slots + (((c + i) & r->mask) << 3);
        int64_t cpu = d[D_CPU], sk = d[D_SK], sk_seq = d[D_SKSEQ], len = d[D_LEN];
        int64_t fin;
        if (paced) {
            double per = bpsn > 0 ? (double)(len + ovh) * bpsn : 0.0;
            if (ppsn > 0 && ppsn > per) per = ppsn;
            t += per + (double)slow;
            fin = (int64_t)t;
        } else {
            fin = now;
        }
        nbytes += len;
        if (cpu == irq) local++;
        if (cpu >= 0 && cpu < w->ncpus) w->by_cpu[cpu]++;
        if (lat_at >= 0) w->lat[lat_at + i] = fin - d[D_TSTAMP];
        if (sk >= 0 && sk < w->nsock) {
            int64_t lq = w->last_queue[sk];
            if (lq >= 0 && lq != q) { w->moved[sk] = 1; changes++; }
            w->last_queue[sk] = q;
            if (sk_seq <= w->last_seq[sk]) {
                if (w->moved[sk]) reo_moved++; else reo++;
            } else {
                w->last_seq[sk] = sk_seq;
            }
            int64_t *s = w->sock + sk * w->sock_stride;
            s[w->off_done_bytes] += len + w->truesize;
            s[w->off_done] += 1;
        }
    }
    if (paced) w->wire_t[dev] = (int64_t)t;
    int64_t *qf = r->qf, *nf = w->nicf;
    qf[r->qoff[1]] += n;
    qf[r->qoff[2]] += nbytes;
    qf[r->qoff[3]] += local;
    qf[r->qoff[4]] += n - local;
    nf[w->noff[0]] += n;
    nf[w->noff[1]] += nbytes;
    nf[w->noff[2]] += reo;
    nf[w->noff[3]] += reo_moved;
    nf[w->noff[4]] += changes;
    out[0] = n; out[1] = nbytes; out[2] = local; out[3] = reo; out[4] = reo_moved;
    out[5] = changes;
    return n;
}

/* Which of the n rings hold descriptors and have a free wire at ``now``:
   their positions go to ready[1..k], k to ready[0].  Returns how long until
   a ring with descriptors may send: 0 if one may now, > 0 while its wire is
   busy, -1 when every ring is empty. */
int64_t netq_nic_scan(netq_txr **rings, int64_t n, int64_t *wire_t, int64_t now,
                      int64_t *ready) {
    int64_t k = 0, wait = -1;
    for (int64_t i = 0; i < n; i++) {
        int64_t *idx = rings[i]->idx;
        if (__atomic_load_n(&idx[RING_PROD], __ATOMIC_ACQUIRE) == idx[RING_CONS]) continue;
        int64_t w = wire_t[rings[i]->dev] - now;
        if (w <= 0) { ready[++k] = i; wait = 0; }
        else if (wait < 0 || w < wait) wait = w;
    }
    ready[0] = k;
    return wait;
}
"""


def _defines() -> str:
    pairs = {
        "L_OWNER": LOCK.owner_cpu,
        "L_LAST": LOCK.last_cpu,
        "L_TACQ": LOCK.acquired_ns,
        "L_HANDED": LOCK.handed_ns,
        "L_QH": LOCK.q_head,
        "L_QT": LOCK.q_tail,
        "L_QC": LOCK.q_cpu,
        "S_ACQ": STAT.acquisitions,
        "S_ACQB": STAT.acq_bounces,
        "S_HMIN": STAT.hold_min,
        "S_HMAX": STAT.hold_max,
        "S_HTOT": STAT.hold_total,
        "S_TRYF": STAT.trylock_fail,
        "MAX_WAITERS": MAX_WAITERS,
        "RING_PROD": RING.prod,
        "RING_CONS": RING.cons,
        "D_CPU": DESC.cpu,
        "D_SK": DESC.sk,
        "D_SKSEQ": DESC.sk_seq,
        "D_LEN": DESC.len,
        "D_TSTAMP": DESC.tstamp,
    }
    return "\n".join(f"#define {k} {v}" for k, v in pairs.items())


#: The hottest calls as methods of CPython extension types.  A cffi call
#: converting a descriptor costs more than the Python it would replace (the
#: eight integers, the pointers, the GIL released and taken again), and the
#: Python frame around a lock call costs as much as the call; a method of a C
#: type takes its arguments as they are.  Word-level work only: the ring type
#: copies descriptors and publishes an index, as shm/ring.py's Python methods
#: do; the lock type calls the cffi module's lock functions above and hands
#: everything but the uncontended result back to shm/lock.py.
OPS_SOURCE = r"""
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <structmember.h>
#include <stdint.h>
#include <string.h>

#define RING_PROD %(prod)d
#define RING_CONS %(cons)d
#define DESC_WORDS %(desc_words)d

typedef struct {
    PyObject_HEAD
    int64_t *idx;    /* the ring's RING record */
    int64_t *slots;  /* slot 0 */
    int64_t size, mask;
    PyObject *keep;  /* what keeps the memory mapped */
    PyObject *empty, *dtype;  /* numpy.empty and numpy.int64, for take_array */
} RingObject;

/* Append the descriptor v; False if the ring is full.  prod is published
   with a seq_cst store (a full barrier on x86): the consumer's RING.wake,
   read after it, is then seen (shm/ring.py, the doorbell request). */
static PyObject *ring_put_words(RingObject *r, const int64_t *v) {
    int64_t *idx = r->idx;
    int64_t p = idx[RING_PROD];
    if (p - __atomic_load_n(&idx[RING_CONS], __ATOMIC_ACQUIRE) >= r->size) Py_RETURN_FALSE;
    int64_t *s = r->slots + (p & r->mask) * DESC_WORDS;
    for (int i = 0; i < DESC_WORDS; i++) s[i] = v[i];
    __atomic_store_n(&idx[RING_PROD], p + 1, __ATOMIC_SEQ_CST);
    Py_RETURN_TRUE;
}

/* Ring.produce(d): ring_put_words of the descriptor d, a tuple or list of ints. */
static PyObject *ring_produce(RingObject *r, PyObject *d) {
    PyObject **items;
    Py_ssize_t n;
    if (PyTuple_CheckExact(d)) { items = ((PyTupleObject *)d)->ob_item; n = PyTuple_GET_SIZE(d); }
    else if (PyList_CheckExact(d)) { items = ((PyListObject *)d)->ob_item; n = PyList_GET_SIZE(d); }
    else { PyErr_SetString(PyExc_TypeError, "a descriptor is a tuple or list"); return NULL; }
    if (n != DESC_WORDS) { PyErr_SetString(PyExc_ValueError, "a descriptor has 8 words"); return NULL; }
    int64_t v[DESC_WORDS];
    for (int i = 0; i < DESC_WORDS; i++) {
        v[i] = PyLong_AsLongLong(items[i]);
        if (v[i] == -1 && PyErr_Occurred()) return NULL;
    }
    return ring_put_words(r, v);
}

/* Where produce_from() finds a descriptor's words in an object (set once
   by desc_fields()): objects of one type with __slots__, word i being the
   int in the slot at from_off[i], or (from_sub[i] >= 0) the int in the slot
   at from_sub[i] of the object in that slot, from_none[i] if that is None. */
static PyTypeObject *from_type = NULL;
static Py_ssize_t from_off[DESC_WORDS], from_sub[DESC_WORDS];
static int64_t from_none[DESC_WORDS];

static int slot_offset(PyObject *type, PyObject *name, Py_ssize_t *off) {
    PyObject *d = PyObject_GetAttr(type, name);
    if (d == NULL) return -1;
    int ok = Py_IS_TYPE(d, &PyMemberDescr_Type) &&
             ((PyMemberDescrObject *)d)->d_member->type == T_OBJECT_EX;
    if (ok) *off = ((PyMemberDescrObject *)d)->d_member->offset;
    Py_DECREF(d);
    if (!ok) PyErr_Format(PyExc_TypeError, "%%R is not a __slots__ member", name);
    return ok ? 0 : -1;
}

/* desc_fields(type, fields): each of the DESC_WORDS fields is a slot name,
   or (slot, type of what it holds, its slot, value when None). */
static PyObject *desc_fields(PyObject *mod, PyObject *args) {
    PyObject *type, *fields;
    if (!PyArg_ParseTuple(args, "O!O!", &PyType_Type, &type, &PyTuple_Type, &fields)) return NULL;
    if (PyTuple_GET_SIZE(fields) != DESC_WORDS) {
        PyErr_SetString(PyExc_ValueError, "a descriptor has 8 words");
        return NULL;
    }
    for (int i = 0; i < DESC_WORDS; i++) {
        PyObject *f = PyTuple_GET_ITEM(fields, i), *sub_type, *sub, *none;
        from_sub[i] = -1;
        from_none[i] = 0;
        if (PyUnicode_Check(f)) {
            if (slot_offset(type, f, &from_off[i]) < 0) return NULL;
        } else if (PyTuple_Check(f) && PyTuple_GET_SIZE(f) == 4) {
            PyObject *name = PyTuple_GET_ITEM(f, 0);
            sub_type = PyTuple_GET_ITEM(f, 1);
            sub = PyTuple_GET_ITEM(f, 2);
            none = PyTuple_GET_ITEM(f, 3);
            if (slot_offset(type, name, &from_off[i]) < 0 ||
                slot_offset(sub_type, sub, &from_sub[i]) < 0) return NULL;
            from_none[i] = PyLong_AsLongLong(none);
            if (from_none[i] == -1 && PyErr_Occurred()) return NULL;
        } else {
            PyErr_SetString(PyExc_TypeError, "a field is a name or (name, type, name, default)");
            return NULL;
        }
    }
    Py_INCREF(type);
    Py_XSETREF(from_type, (PyTypeObject *)type);
    Py_RETURN_NONE;
}

/* Ring.produce_from(obj): produce() of obj's descriptor, its words read
   from obj's slots as desc_fields() said (no tuple built). */
static PyObject *ring_produce_from(RingObject *r, PyObject *obj) {
    if (from_type == NULL || !Py_IS_TYPE(obj, from_type)) {
        PyErr_SetString(PyExc_TypeError, "produce_from: not the type given to desc_fields()");
        return NULL;
    }
    int64_t v[DESC_WORDS];
    for (int i = 0; i < DESC_WORDS; i++) {
        PyObject *x = *(PyObject **)((char *)obj + from_off[i]);
        if (x != NULL && from_sub[i] >= 0) {
            if (x == Py_None) { v[i] = from_none[i]; continue; }
            x = *(PyObject **)((char *)x + from_sub[i]);
        }
        if (x == NULL) { PyErr_SetString(PyExc_AttributeError, "produce_from: unset slot"); return NULL; }
        v[i] = PyLong_AsLongLong(x);
        if (v[i] == -1 && PyErr_Occurred()) return NULL;
    }
    return ring_put_words(r, v);
}

/* Ring.consume(): the oldest descriptor as a tuple, or None if empty. */
static PyObject *ring_consume(RingObject *r, PyObject *unused) {
    int64_t *idx = r->idx;
    int64_t c = idx[RING_CONS];
    if (c == __atomic_load_n(&idx[RING_PROD], __ATOMIC_ACQUIRE)) Py_RETURN_NONE;
    const int64_t *s = r->slots + (c & r->mask) * DESC_WORDS;
    PyObject *t = PyTuple_New(DESC_WORDS);
    if (t == NULL) return NULL;
    for (int i = 0; i < DESC_WORDS; i++) {
        PyObject *x = PyLong_FromLongLong(s[i]);
        if (x == NULL) { Py_DECREF(t); return NULL; }
        PyTuple_SET_ITEM(t, i, x);
    }
    __atomic_store_n(&idx[RING_CONS], c + 1, __ATOMIC_RELEASE);
    return t;
}

/* Ring.put(buf): append the descriptors of a C-contiguous int64 buffer
   (n x 8 words) as far as they fit; returns how many. */
static PyObject *ring_put(RingObject *r, PyObject *obj) {
    Py_buffer v;
    if (PyObject_GetBuffer(obj, &v, PyBUF_C_CONTIGUOUS | PyBUF_FORMAT) < 0) return NULL;
    int64_t n = (int64_t)(v.len / (DESC_WORDS * 8));
    if (v.itemsize != 8 || v.format == NULL || (strcmp(v.format, "l") && strcmp(v.format, "q") &&
        strcmp(v.format, "<l") && strcmp(v.format, "<q")) || v.len %% (DESC_WORDS * 8)) {
        PyBuffer_Release(&v);
        PyErr_SetString(PyExc_ValueError, "not a buffer of whole int64 descriptors");
        return NULL;
    }
    int64_t *idx = r->idx;
    int64_t p = idx[RING_PROD];
    int64_t room = r->size - (p - __atomic_load_n(&idx[RING_CONS], __ATOMIC_ACQUIRE));
    if (n > room) n = room;
    const int64_t *src = (const int64_t *)v.buf;
    for (int64_t i = 0; i < n; i++) {
        int64_t *s = r->slots + ((p + i) & r->mask) * DESC_WORDS;
        for (int k = 0; k < DESC_WORDS; k++) s[k] = src[i * DESC_WORDS + k];
    }
    PyBuffer_Release(&v);
    if (n > 0) __atomic_store_n(&idx[RING_PROD], p + n, __ATOMIC_SEQ_CST);
    return PyLong_FromLongLong(n);
}

/* Ring.take_array(limit): remove up to ``limit`` descriptors into a new
   (n, 8) int64 array (numpy.empty, called from here). */
static PyObject *ring_take_array(RingObject *r, PyObject *arg) {
    int64_t limit = PyLong_AsLongLong(arg);
    if (limit == -1 && PyErr_Occurred()) return NULL;
    int64_t *idx = r->idx;
    int64_t c = idx[RING_CONS];
    int64_t n = __atomic_load_n(&idx[RING_PROD], __ATOMIC_ACQUIRE) - c;
    if (n > limit) n = limit;
    if (n < 0) n = 0;
    PyObject *shape = Py_BuildValue("(LL)", (long long)n, (long long)DESC_WORDS);
    if (shape == NULL) return NULL;
    PyObject *arr = PyObject_CallFunctionObjArgs(r->empty, shape, r->dtype, NULL);
    Py_DECREF(shape);
    if (arr == NULL || n == 0) return arr;
    Py_buffer v;
    if (PyObject_GetBuffer(arr, &v, PyBUF_C_CONTIGUOUS | PyBUF_WRITABLE) < 0) {
        Py_DECREF(arr);
        return NULL;
    }
    int64_t *dst = (int64_t *)v.buf;
    for (int64_t i = 0; i < n; i++) {
        const int64_t *s = r->slots + ((c + i) & r->mask) * DESC_WORDS;
        for (int k = 0; k < DESC_WORDS; k++) dst[i * DESC_WORDS + k] = s[k];
    }
    PyBuffer_Release(&v);
    __atomic_store_n(&idx[RING_CONS], c + n, __ATOMIC_RELEASE);
    return arr;
}

/* Ring.free(): slots the producer may still fill (read by the producer:
   cons is read with acquire, prod is its own). */
static PyObject *ring_free(RingObject *r, PyObject *unused) {
    int64_t *idx = r->idx;
    int64_t c = __atomic_load_n(&idx[RING_CONS], __ATOMIC_ACQUIRE);
    return PyLong_FromLongLong(r->size - (idx[RING_PROD] - c));
}

/* Ring.used(): descriptors produced and not yet consumed (len(ring)):
   cons is read before prod, as Ring.__len__ does. */
static PyObject *ring_used(RingObject *r, PyObject *unused) {
    int64_t *idx = r->idx;
    int64_t c = __atomic_load_n(&idx[RING_CONS], __ATOMIC_ACQUIRE);
    return PyLong_FromLongLong(__atomic_load_n(&idx[RING_PROD], __ATOMIC_ACQUIRE) - c);
}

static PyMethodDef ring_methods[] = {
    {"produce", (PyCFunction)ring_produce, METH_O, "append one descriptor; False if full"},
    {"free", (PyCFunction)ring_free, METH_NOARGS, "free slots"},
    {"used", (PyCFunction)ring_used, METH_NOARGS, "descriptors in the ring"},
    {"produce_from", (PyCFunction)ring_produce_from, METH_O, "produce(the descriptor of obj)"},
    {"consume", (PyCFunction)ring_consume, METH_NOARGS, "remove the oldest descriptor, or None"},
    {"put", (PyCFunction)ring_put, METH_O, "append the descriptors of a buffer; how many fit"},
    {"take_array", (PyCFunction)ring_take_array, METH_O, "remove up to n into a new array"},
    {NULL, NULL, 0, NULL}};

/* Ring(keep, idx_address, slot0_address, size, numpy.empty, numpy.int64) */
static int ring_init(RingObject *r, PyObject *args, PyObject *kw) {
    PyObject *keep, *empty, *dtype;
    unsigned long long idx, slots;
    long long size;
    if (!PyArg_ParseTuple(args, "OKKLOO", &keep, &idx, &slots, &size, &empty, &dtype)) return -1;
    if (size <= 0 || (size & (size - 1))) {
        PyErr_SetString(PyExc_ValueError, "ring size must be a power of two");
        return -1;
    }
    r->idx = (int64_t *)(uintptr_t)idx;
    r->slots = (int64_t *)(uintptr_t)slots;
    r->size = size;
    r->mask = size - 1;
    Py_INCREF(keep);
    Py_XSETREF(r->keep, keep);
    Py_INCREF(empty);
    Py_XSETREF(r->empty, empty);
    Py_INCREF(dtype);
    Py_XSETREF(r->dtype, dtype);
    return 0;
}

static void ring_dealloc(RingObject *r) {
    Py_XDECREF(r->keep);
    Py_XDECREF(r->empty);
    Py_XDECREF(r->dtype);
    Py_TYPE(r)->tp_free((PyObject *)r);
}

/* -- Lock: the uncontended lock/unlock/trylock of one shm.lock.SpinLock -------
   The word-level work is the cffi module's netq_lock_fifo & co. (called
   through their addresses, on the SpinLock's netq_lk); this type only saves
   the Python frame and the cffi call around them.  Anything but the fast
   result goes back to the SpinLock's Python method (``*_after(r)``): the
   contended wait, a guard timeout, a failed trylock. */
typedef int64_t (*lock_fn)(void *);

typedef struct {
    PyObject_HEAD
    void *lk;
    lock_fn lock, unlock, trylock;
    PyObject *lock_after, *unlock_after, *trylock_after, *keep;
} LockObject;

static PyObject *lock_lock(LockObject *o, PyObject *unused) {
    int64_t r = o->lock(o->lk);
    if (r == 0) Py_RETURN_FALSE;  /* spin_lock(): not contended */
    PyObject *a = PyLong_FromLongLong(r);
    if (a == NULL) return NULL;
    PyObject *res = PyObject_CallOneArg(o->lock_after, a);
    Py_DECREF(a);
    return res;
}

static PyObject *lock_unlock(LockObject *o, PyObject *unused) {
    int64_t r = o->unlock(o->lk);
    if (r != -3) Py_RETURN_NONE;  /* -3: the guard wait timed out, retry */
    PyObject *a = PyLong_FromLongLong(r);
    if (a == NULL) return NULL;
    PyObject *res = PyObject_CallOneArg(o->unlock_after, a);
    Py_DECREF(a);
    return res;
}

static PyObject *lock_trylock(LockObject *o, PyObject *unused) {
    int64_t r = o->trylock(o->lk);
    if (r == 0) Py_RETURN_TRUE;
    PyObject *a = PyLong_FromLongLong(r);
    if (a == NULL) return NULL;
    PyObject *res = PyObject_CallOneArg(o->trylock_after, a);
    Py_DECREF(a);
    return res;
}

static PyMethodDef lock_methods[] = {
    {"lock", (PyCFunction)lock_lock, METH_NOARGS, "spin_lock(); True if it had to wait"},
    {"unlock", (PyCFunction)lock_unlock, METH_NOARGS, "spin_unlock()"},
    {"trylock", (PyCFunction)lock_trylock, METH_NOARGS, "spin_trylock()"},
    {NULL, NULL, 0, NULL}};

/* Lock(keep, lk_address, (lock, unlock, trylock addresses), (the three *_after)) */
static int lock_init(LockObject *o, PyObject *args, PyObject *kw) {
    PyObject *keep, *after_l, *after_u, *after_t;
    unsigned long long lk, fl, fu, ft;
    if (!PyArg_ParseTuple(args, "OK(KKK)(OOO)", &keep, &lk, &fl, &fu, &ft, &after_l, &after_u,
                          &after_t))
        return -1;
    o->lk = (void *)(uintptr_t)lk;
    o->lock = (lock_fn)(uintptr_t)fl;
    o->unlock = (lock_fn)(uintptr_t)fu;
    o->trylock = (lock_fn)(uintptr_t)ft;
    Py_INCREF(keep);
    Py_XSETREF(o->keep, keep);
    Py_INCREF(after_l);
    Py_XSETREF(o->lock_after, after_l);
    Py_INCREF(after_u);
    Py_XSETREF(o->unlock_after, after_u);
    Py_INCREF(after_t);
    Py_XSETREF(o->trylock_after, after_t);
    return 0;
}

static int lock_traverse(LockObject *o, visitproc visit, void *arg) {
    Py_VISIT(o->lock_after);
    Py_VISIT(o->unlock_after);
    Py_VISIT(o->trylock_after);
    Py_VISIT(o->keep);
    return 0;
}

static int lock_clear(LockObject *o) {
    Py_CLEAR(o->lock_after);
    Py_CLEAR(o->unlock_after);
    Py_CLEAR(o->trylock_after);
    Py_CLEAR(o->keep);
    return 0;
}

static void lock_dealloc(LockObject *o) {
    PyObject_GC_UnTrack(o);
    lock_clear(o);
    Py_TYPE(o)->tp_free((PyObject *)o);
}

static PyTypeObject LockType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "%(modname)s.Lock",
    .tp_basicsize = sizeof(LockObject),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    .tp_doc = "the uncontended paths of one shm.lock.SpinLock",
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)lock_init,
    .tp_traverse = (traverseproc)lock_traverse,
    .tp_clear = (inquiry)lock_clear,
    .tp_dealloc = (destructor)lock_dealloc,
    .tp_methods = lock_methods,
};

static PyTypeObject RingType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "%(modname)s.Ring",
    .tp_basicsize = sizeof(RingObject),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "the single-descriptor operations of one shm.ring.Ring",
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)ring_init,
    .tp_dealloc = (destructor)ring_dealloc,
    .tp_methods = ring_methods,
};

/* Words(mv): a record's int64 words over shared memory, as the memoryview
   ``mv`` (cast to 'q', C-contiguous) it is made from, with the integer
   index read and write done here: memoryview's generic item path (format
   dispatch, suboffsets) costs more than the load or store.  Anything else
   (slices, iteration, the buffer protocol, tolist) is the memoryview's.
   It holds an export of ``mv`` until release(), so the mapping cannot be
   closed under it, as a memoryview's own export forbids. */
typedef struct {
    PyObject_HEAD
    int64_t *p;
    Py_ssize_t n;
    PyObject *mv;
    Py_buffer view;
} WordsObject;

static int words_init(WordsObject *w, PyObject *args, PyObject *kw) {
    PyObject *mv;
    if (!PyArg_ParseTuple(args, "O!", &PyMemoryView_Type, &mv)) return -1;
    if (w->mv != NULL) { PyErr_SetString(PyExc_TypeError, "Words: already made"); return -1; }
    if (PyObject_GetBuffer(mv, &w->view, PyBUF_WRITABLE | PyBUF_FORMAT | PyBUF_C_CONTIGUOUS) < 0)
        return -1;
    if (w->view.itemsize != 8 || w->view.format == NULL || strcmp(w->view.format, "q") != 0) {
        PyBuffer_Release(&w->view);
        PyErr_SetString(PyExc_TypeError, "Words: a memoryview cast to 'q'");
        return -1;
    }
    w->p = (int64_t *)w->view.buf;
    w->n = w->view.len / 8;
    Py_INCREF(mv);
    w->mv = mv;
    return 0;
}

static int words_gone(WordsObject *w) {
    if (w->p != NULL) return 0;
    PyErr_SetString(PyExc_ValueError, "operation forbidden on released Words");
    return -1;
}

static Py_ssize_t words_len(WordsObject *w) { return w->n; }

/* The word index of an exact int key (negative from the end), or -1 with
   an exception set (IndexError as memoryview's). */
static inline Py_ssize_t words_index(WordsObject *w, PyObject *key) {
    Py_ssize_t i = PyLong_AsSsize_t(key);
    if (i < 0) {
        if (i == -1 && PyErr_Occurred()) return -1;
        i += w->n;
    }
    if ((size_t)i >= (size_t)w->n) {
        PyErr_SetString(PyExc_IndexError, "index out of bounds on dimension 1");
        return -1;
    }
    return i;
}

static PyObject *words_subscript(WordsObject *w, PyObject *key) {
    if (PyLong_CheckExact(key) && w->p != NULL) {
        Py_ssize_t i = words_index(w, key);
        return i < 0 ? NULL : PyLong_FromLongLong(w->p[i]);
    }
    if (words_gone(w) < 0) return NULL;
    return PyObject_GetItem(w->mv, key);
}

static int words_ass_subscript(WordsObject *w, PyObject *key, PyObject *value) {
    if (PyLong_CheckExact(key) && value != NULL && w->p != NULL) {
        Py_ssize_t i = words_index(w, key);
        if (i < 0) return -1;
        long long v = PyLong_AsLongLong(value);
        if (v == -1 && PyErr_Occurred()) return -1;
        w->p[i] = v;
        return 0;
    }
    if (words_gone(w) < 0) return -1;
    if (value == NULL) { PyErr_SetString(PyExc_TypeError, "cannot delete memory"); return -1; }
    return PyObject_SetItem(w->mv, key, value);
}

static PyObject *words_iter(WordsObject *w) {
    if (words_gone(w) < 0) return NULL;
    return PyObject_GetIter(w->mv);
}

/* The buffer protocol is the memoryview's: the export is taken on it
   (view->obj is the memoryview, whose release the consumer calls), so a
   live export blocks release() and the unmap as it would on the memoryview.
   words_releasebuffer is never called for that reason; it exists because
   consumers such as numpy.frombuffer hold an export (through a memoryview of
   their own) only of a type that has bf_releasebuffer, and otherwise keep a
   bare reference that would not stop the unmap. */
static int words_getbuffer(WordsObject *w, Py_buffer *view, int flags) {
    if (words_gone(w) < 0) return -1;
    return PyObject_GetBuffer(w->mv, view, flags);
}

static void words_releasebuffer(WordsObject *w, Py_buffer *view) {}

/* release(): give the export back and release the memoryview (idempotent).
   If the memoryview refuses (someone else holds an export of it), the
   export is taken again and the Words stays usable, as a memoryview whose
   release() raised does. */
static PyObject *words_release(WordsObject *w, PyObject *unused) {
    if (w->p == NULL) Py_RETURN_NONE;
    PyBuffer_Release(&w->view);
    PyObject *r = PyObject_CallMethod(w->mv, "release", NULL);
    if (r == NULL) {
        PyObject *et, *ev, *tb;
        PyErr_Fetch(&et, &ev, &tb);
        if (PyObject_GetBuffer(w->mv, &w->view,
                               PyBUF_WRITABLE | PyBUF_FORMAT | PyBUF_C_CONTIGUOUS) < 0) {
            w->p = NULL;  /* cannot happen on a live memoryview; fail safe */
            w->n = 0;
            Py_XDECREF(et);
            Py_XDECREF(ev);
            Py_XDECREF(tb);
            return NULL;
        }
        w->p = (int64_t *)w->view.buf;
        PyErr_Restore(et, ev, tb);
        return NULL;
    }
    Py_DECREF(r);
    w->p = NULL;
    w->n = 0;
    Py_RETURN_NONE;
}

static PyObject *words_tolist(WordsObject *w, PyObject *unused) {
    if (words_gone(w) < 0) return NULL;
    return PyObject_CallMethod(w->mv, "tolist", NULL);
}

static void words_dealloc(WordsObject *w) {
    if (w->p != NULL) PyBuffer_Release(&w->view);
    Py_XDECREF(w->mv);
    Py_TYPE(w)->tp_free((PyObject *)w);
}

static PyMethodDef words_methods[] = {
    {"release", (PyCFunction)words_release, METH_NOARGS, "give the mapping back"},
    {"tolist", (PyCFunction)words_tolist, METH_NOARGS, "the words as a list"},
    {NULL, NULL, 0, NULL}};

static PyMappingMethods words_as_mapping = {
    (lenfunc)words_len, (binaryfunc)words_subscript, (objobjargproc)words_ass_subscript};

static PyBufferProcs words_as_buffer = {(getbufferproc)words_getbuffer,
                                        (releasebufferproc)words_releasebuffer};

static PyTypeObject WordsType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "%(modname)s.Words",
    .tp_basicsize = sizeof(WordsObject),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "a record's int64 words over shared memory (index read/write in C)",
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)words_init,
    .tp_dealloc = (destructor)words_dealloc,
    .tp_as_mapping = &words_as_mapping,
    .tp_as_buffer = &words_as_buffer,
    .tp_iter = (getiterfunc)words_iter,
    .tp_methods = words_methods,
};

static PyMethodDef module_methods[] = {
    {"desc_fields", desc_fields, METH_VARARGS, "where produce_from finds the words"},
    {NULL, NULL, 0, NULL}};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "%(modname)s", NULL, -1,
                                    module_methods};

PyMODINIT_FUNC PyInit_%(modname)s(void) {
    if (PyType_Ready(&RingType) < 0 || PyType_Ready(&LockType) < 0 ||
        PyType_Ready(&WordsType) < 0)
        return NULL;
    PyObject *m = PyModule_Create(&module);
    if (m == NULL) return NULL;
    Py_INCREF(&RingType);
    Py_INCREF(&LockType);
    Py_INCREF(&WordsType);
    if (PyModule_AddObject(m, "Ring", (PyObject *)&RingType) < 0 ||
        PyModule_AddObject(m, "Lock", (PyObject *)&LockType) < 0 ||
        PyModule_AddObject(m, "Words", (PyObject *)&WordsType) < 0) {
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
"""


def _cache_dir() -> str:
    d = os.environ.get("NETQ_NATIVE_DIR") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "netq"
    )
    os.makedirs(d, mode=0o700, exist_ok=True)
    return d


def _build() -> types.ModuleType:
    source = SOURCE % {"defines": _defines()}
    key = hashlib.sha1((CDEF + source + sys.version).encode()).hexdigest()[:16]
    modname = f"_netq_native_{key}"
    cache = _cache_dir()
    suffix = importlib.machinery.EXTENSION_SUFFIXES[0]
    path = os.path.join(cache, modname + suffix)
    if not os.path.exists(path):
        import cffi

        ffi = cffi.FFI()
        ffi.cdef(CDEF)
        ffi.set_source(modname, source, libraries=["pthread"], extra_compile_args=["-O2"])
        with tempfile.TemporaryDirectory(dir=cache) as tmp:
            built = ffi.compile(tmpdir=tmp, verbose=False)
            os.replace(built, path)  # atomic: concurrent builders do not collide
    return _load(modname, path)


def _load(modname: str, path: str) -> types.ModuleType:
    spec = importlib.util.spec_from_file_location(modname, path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load the compiled helper {path}")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _build_ops() -> types.ModuleType:
    """Compile (once, cached like the cffi module) and load the ring and
    lock types."""
    fields = {"prod": RING.prod, "cons": RING.cons, "desc_words": DESC.words}
    key = hashlib.sha1((OPS_SOURCE + repr(fields) + sys.version).encode()).hexdigest()[:16]
    modname = f"_netq_ops_{key}"
    source = OPS_SOURCE % dict(fields, modname=modname)
    cache = _cache_dir()
    path = os.path.join(cache, modname + importlib.machinery.EXTENSION_SUFFIXES[0])
    if not os.path.exists(path):
        from setuptools import Distribution, Extension  # type: ignore[import-untyped]
        from setuptools.command.build_ext import build_ext  # type: ignore[import-untyped]

        with tempfile.TemporaryDirectory(dir=cache) as tmp:
            src = os.path.join(tmp, modname + ".c")
            with open(src, "w") as fh:
                fh.write(source)
            ext = Extension(modname, [src], extra_compile_args=["-O2"])
            cmd = build_ext(Distribution({"ext_modules": [ext]}))
            cmd.build_lib = cmd.build_temp = tmp
            cmd.ensure_finalized()
            cmd.run()
            os.replace(cmd.get_ext_fullpath(modname), path)  # atomic, as above
    return _load(modname, path)


#: the compiled module's cffi FFI and its functions (None without the helper);
#: Any: cffi builds both at run time from CDEF, so they carry no static type
ffi: Any = None
lib: Any = None
#: the compiled ring type (``Ring(keep, idx_address, slot0_address, size,
#: numpy.empty, numpy.int64)``), or None
RingOps: Any = None
#: the compiled lock type (see OPS_SOURCE), or None
LockOps: Any = None
#: the compiled record type (``Words(memoryview cast to 'q')``): a record's
#: words with the integer index read and write in C, or None
WordsOps: Any = None
#: ``desc_fields(type, fields)``: where ``RingOps.produce_from`` reads a
#: descriptor's words in an object (shm.ring.desc_fields), or None
desc_fields: Any = None
#: why the native helper is not used, if it is not
unavailable_reason = ""

if os.environ.get("NETQ_NATIVE", "1") == "0":
    unavailable_reason = "disabled by NETQ_NATIVE=0"
else:
    try:
        _mod = _build()
        ffi, lib = _mod.ffi, _mod.lib
    except Exception as e:
        unavailable_reason = f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"
    if lib is not None:
        try:
            _ops = _build_ops()
            RingOps, LockOps, desc_fields = _ops.Ring, _ops.Lock, _ops.desc_fields
            WordsOps = _ops.Words
        except Exception:  # rings, lock calls and records stay in Python; the rest works
            RingOps = LockOps = desc_fields = WordsOps = None


def backend() -> str:
    return "native (cffi)" if lib is not None else f"python ({unavailable_reason})"
