"""struct sk_buff, the part the transmit path reads (include/linux/skbuff.h).

An skb lives as a Python object while one CPU works on it and as an 8-word
descriptor (:data:`shm.ring.DESC`) while it sits in shared memory (a qdisc
band, q->gso_skb, a TX ring).  Its identity is (cpu, seq): the CPU that
generated it and that CPU's running count.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from shm.ring import desc_fields

from ..stddef import NULL
from .sock import Sock

if TYPE_CHECKING:  # pragma: no cover
    from collections.abc import Sequence

    from ..net_namespace import Net
    from .netdevice import NetDevice

ETH_P_IP = 0x0800


class SkBuff:
    __slots__ = (
        "cpu",
        "dev",
        "hash",
        "len",
        "ooo_okay",
        "priority",
        "protocol",
        "queue_mapping",
        "rx_queue",
        "seq",
        "sk",
        "sk_seq",
        "tstamp",
    )

    def __init__(
        self,
        cpu: int,
        seq: int,
        sk: Sock | None,
        sk_seq: int,
        length: int,
        priority: int,
        tstamp: int,
        dev: NetDevice,
        ooo_okay: bool = False,
        rx_queue: int = -1,
    ) -> None:
        self.cpu = cpu
        self.seq = seq
        self.sk = sk
        self.sk_seq = sk_seq
        self.len = length
        self.priority = priority
        self.tstamp = tstamp
        self.queue_mapping = 0
        self.dev = dev
        #: set by TCP when nothing is outstanding on the socket
        self.ooo_okay = ooo_okay
        self.protocol = ETH_P_IP
        #: recorded rx queue (forwarded skb) or -1: skb_rx_queue_recorded()
        self.rx_queue = rx_queue
        #: skb->hash (skb_get_hash); 0 until computed, locally generated skbs
        #: take the socket's sk_txhash (skb_set_hash_from_sk)
        self.hash = sk.sk_txhash if sk is not None else 0

    def desc(self) -> tuple[int, int, int, int, int, int, int, int]:
        """The 8-word descriptor (shm.ring.DESC order)."""
        sk = self.sk
        return (
            self.cpu,
            self.seq,
            sk.id if sk is not None else -1,
            self.sk_seq,
            self.len,
            self.priority,
            self.tstamp,
            self.queue_mapping,
        )

    def __repr__(self) -> str:
        return f"<skb {self.cpu}:{self.seq} sk={self.sk.id if self.sk else None} len={self.len}>"


# The compiled ring copies an skb's descriptor words from its slots
# (Ring.produce_from): the same words, in the same order, as SkBuff.desc().
desc_fields(
    SkBuff,
    ("cpu", "seq", ("sk", Sock, "id", -1), "sk_seq", "len", "priority", "tstamp", "queue_mapping"),
)


def skb_from_desc(d: Sequence[int], net: Net) -> SkBuff:
    """Rebuild an skb from its descriptor (after a qdisc dequeue).

    skb->dev is left NULL: the dequeuer passes the device along itself
    (sch_direct_xmit's ``dev``) and sets skb->dev where it is read again."""
    cpu, seq, sk, sk_seq, length, prio, tstamp, qm = d
    s = net.socks[sk] if sk >= 0 else None
    skb = SkBuff(cpu, seq, s, sk_seq, length, prio, tstamp, NULL)
    skb.queue_mapping = qm
    return skb


def skb_rx_queue_recorded(skb: SkBuff) -> bool:
    return skb.rx_queue >= 0


def skb_get_rx_queue(skb: SkBuff) -> int:
    return skb.rx_queue
