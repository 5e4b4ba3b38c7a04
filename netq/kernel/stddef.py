"""NULL, as the kernel model's pointer fields hold it (include/linux/stddef.h).

A kernel struct's pointer may be NULL where no reader can meet it: a virtual
device's netdev_queue has no driver ring, a physical device no lower device,
mq's Qdisc_ops no enqueue, noop_qdisc no device, and nothing is wired before
the device is registered.  C's type system does not tell those pointers from
the always-set ones, and the transmit path does not test them: the code that
reads one only runs where it is set (only the ethernet driver reads
txq->ring).

netq keeps that contract.  Such a field is annotated with the type every
reader sees and holds :data:`NULL` (``None``, typed ``Any``) until wired, so
the hot path needs no ``is None`` test or cast for the type checker.  A field
that its readers do test (``q->enqueue`` in __dev_xmit_skb, ``ops->reset``)
is annotated ``X | None`` instead and narrowed by that test.
"""

from __future__ import annotations

from typing import Any

#: a pointer field not set, or never set for this kind of object
NULL: Any = None
