"""The records of a descriptor ring in shared memory: the descriptor and the
ring's indices.

They are declared here, apart from :mod:`shm.ring`, because both the Python
ring (:mod:`shm.ring`) and the compiled helper (:mod:`shm.native`, which
bakes the field indices into its C source) need them, as :mod:`shm.lockrec`
does for the locks.
"""

from __future__ import annotations

from .layout import WORD, Record, field


class DESC(Record, name="tx_desc", pad=False):
    cpu = field("emulated CPU that generated the skb")
    seq = field("per-CPU skb sequence number: (cpu, seq) is the skb id")
    sk = field("socket (flow) index")
    sk_seq = field("per-socket sequence number (flow order check)")
    len = field("skb->len in bytes")
    priority = field("skb->priority")
    tstamp = field("monotonic ns when dev_queue_xmit was entered")
    queue_mapping = field("TX queue chosen by netdev_pick_tx")


DESC_WORDS = DESC.words
#: slot ``s`` of a ring starts ``s << 6`` bytes after slot 0 (the hot path
#: shifts by the literal: one cache line per descriptor)
assert DESC_WORDS * WORD == 1 << 6


class RING(Record, name="ring"):
    prod = field("next index to fill; written by the producer only")
    wake = field(
        "1: the consumer sleeps and asks the producer to ring its doorbell after "
        "the next publish (virtio's notification flag, inverted); set by the "
        "consumer, cleared by either side (idempotent stores)"
    )
    _pad0 = field("keeps prod and cons on separate cache lines", count=6)
    cons = field("next index to consume; written by the consumer only")
