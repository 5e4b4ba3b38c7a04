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

(Ring descriptors stay in Python: a cffi call converting eight int64
arguments costs more than ``struct.pack_into``.)

Build: the first import compiles the extension into a per-user cache
(``$NETQ_NATIVE_DIR`` or ``~/.cache/netq``), keyed by a hash of the source
and the Python version; later imports load it.  If there is no compiler, or
``NETQ_NATIVE=0`` is set, :data:`lib` is None and netq runs its pure-Python
paths (hashed-semaphore atomics as arch/parisc does); the run's setup says
which backend was used.
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
void netq_unlock_unfair(netq_lk *l);
int64_t netq_lock_fifo(netq_lk *l);
int64_t netq_trylock_fifo(netq_lk *l);
int64_t netq_unlock_fifo(netq_lk *l);
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

void netq_unlock_unfair(netq_lk *l) {
    hold_time(l->rec, l->st);
    l->rec[L_OWNER] = NO_CPU;
    sem_post((sem_t *)l->sem);
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
    }
    return "\n".join(f"#define {k} {v}" for k, v in pairs.items())


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
    spec = importlib.util.spec_from_file_location(modname, path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load the compiled helper {path}")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


#: the compiled module's cffi FFI and its functions (None without the helper);
#: Any: cffi builds both at run time from CDEF, so they carry no static type
ffi: Any = None
lib: Any = None
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


def backend() -> str:
    return "native (cffi)" if lib is not None else f"python ({unavailable_reason})"
