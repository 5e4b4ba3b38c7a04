"""Shared memory for netq: IPC object lifetimes, layouts, locks, rings, atomics.

* :mod:`shm.ipc`    names (``/netq.<pid>.<token>.<what>``, 0600), the run owner
                    that unlinks everything, and cleanup of crashed runs.
* :mod:`shm.layout` records as numpy dtypes of int64 words, cache-line padded.
* :mod:`shm.region` one mapped segment with its layout.
* :mod:`shm.lock`   kernel spinlocks over POSIX semaphores (fifo/unfair,
                    spin/block/adaptive) with /proc/lock_stat statistics.
* :mod:`shm.ring`   single-producer/single-consumer descriptor rings.
* :mod:`shm.atomic` hashed-lock atomic bit operations (as arch/parisc).
"""
