"""The noqueue branch of __dev_queue_xmit: virtual devices (vlan, tunnel)
that call dev_queue_xmit on their lower device, guarded by the per-CPU
xmit_recursion counter and the txq->xmit_lock_owner test.

The check is ``__this_cpu_read(xmit_recursion) > LIMIT`` *before* the
increment.  The k-th virtual device of a stack (1-based) reads k - 1, so a
stack of LIMIT + 1 devices passes and LIMIT + 2 is cut at its last device.
"""

from __future__ import annotations

import pytest

import netq.kernel.core.dev as dev_mod
from netq.kernel.core.netdevice import NET_XMIT_DROP, NET_XMIT_SUCCESS
from netq.kernel.kstructs import (
    IFF_UP,
    MSG_ASKS_TO_QUEUE,
    MSG_DEAD_LOOP,
    NETDEV,
    NETDEV_QUEUE,
    QDISC,
    QDISC_STATE_DEACTIVATED,
    QUEUE_STATE_DRV_XOFF,
    SOCK,
)
from tests.modelutil import (
    config,
    delivered,
    drain,
    drops,
    generated,
    in_flight,
    msgs,
    phys,
    qdisc_of,
    ring_descs,
    sd,
    socks_of,
    traffic,
    tunnel,
    vlan,
    xmit,
)
from workers.nic import Nic

LIMITS = {"2.6.37": 3, "3.13": 10, "6.18": 8}


def vlan_stack(depth: int, profile: str, **kw):
    """v1 -> v2 -> ... -> v<depth> -> eth0; traffic on v1."""
    devs = [phys(ring_size=64)]
    for i in range(1, depth + 1):
        devs.append(vlan(f"v{i}", f"v{i + 1}" if i < depth else "eth0"))
    return config(
        cpus=1,
        profile=profile,
        devices=devs,
        traffic_=[traffic(device="v1", sockets_per_cpu=1)],
        **kw,
    )


def test_profile_recursion_limits():
    from netq.kernel.profiles import PROFILES

    assert {p: PROFILES[p].recursion_limit for p in LIMITS} == LIMITS


@pytest.mark.parametrize("profile", sorted(LIMITS))
def test_stack_of_limit_plus_one_vlans_passes(mknet, profile):
    depth = LIMITS[profile] + 1
    net = mknet(vlan_stack(depth, profile))
    (sk,) = socks_of(net, 0)
    assert xmit(net, 0, sk) == NET_XMIT_SUCCESS
    assert len(ring_descs(net.dev_by_name["eth0"].txqs[0])) == 1
    assert drops(net) == 0
    assert sd(net, 0, "xmit_recursion") == 0
    drain(net, Nic(net))
    assert delivered(net) == 1


@pytest.mark.parametrize("profile", sorted(LIMITS))
def test_stack_of_limit_plus_two_vlans_is_cut_at_the_last_vlan(mknet, profile):
    limit = LIMITS[profile]
    depth = limit + 2
    net = mknet(vlan_stack(depth, profile))
    (sk,) = socks_of(net, 0)
    xmit(net, 0, sk)
    assert drops(net, "XMIT_RECURSION") == 1 and drops(net) == 1
    assert sk.f[SOCK.dropped] == 1
    assert len(ring_descs(net.dev_by_name["eth0"].txqs[0])) == 0
    assert msgs(net, f"v{depth}", MSG_DEAD_LOOP) == (1, 0)
    for i in range(1, depth):
        assert msgs(net, f"v{i}", MSG_DEAD_LOOP) == (0, 0)
    assert sd(net, 0, "xmit_recursion") == 0
    assert generated(net) == delivered(net) + drops(net) + in_flight(net)


@pytest.mark.parametrize("profile", sorted(LIMITS))
def test_vlan_loop_is_cut_by_xmit_recursion(mknet, profile):
    """a -> b -> a -> ... (both LLTX): the (LIMIT + 2)-th visit is refused;
    visits alternate a, b, so the message names a when LIMIT + 2 is odd."""
    limit = LIMITS[profile]
    net = mknet(
        config(
            cpus=1,
            profile=profile,
            devices=[vlan("a", "b"), vlan("b", "a")],
            traffic_=[traffic(device="a", sockets_per_cpu=1)],
        )
    )
    (sk,) = socks_of(net, 0)
    xmit(net, 0, sk)
    assert drops(net, "XMIT_RECURSION") == 1 and drops(net) == 1
    cut = "a" if (limit + 2) % 2 else "b"
    other = "b" if cut == "a" else "a"
    assert msgs(net, cut, MSG_DEAD_LOOP) == (1, 0)
    assert msgs(net, other, MSG_DEAD_LOOP) == (0, 0)
    assert sd(net, 0, "xmit_recursion") == 0


def test_loop_through_non_lltx_tunnel_is_cut_by_xmit_lock_owner(mknet):
    """tun0 (not LLTX: HARD_TX_LOCK sets xmit_lock_owner) -> v0 -> tun0: the
    second visit of tun0 finds its own CPU owning the queue lock."""
    net = mknet(
        config(
            cpus=1,
            devices=[tunnel("tun0", "v0", lltx=False), vlan("v0", "tun0")],
            traffic_=[traffic(device="tun0", sockets_per_cpu=1)],
        )
    )
    (sk,) = socks_of(net, 0)
    tun = net.dev_by_name["tun0"]
    assert not tun.lltx and net.dev_by_name["v0"].lltx
    xmit(net, 0, sk)
    assert drops(net, "DEAD_LOOP_OWNER") == 1 and drops(net) == 1
    assert msgs(net, "tun0", MSG_DEAD_LOOP) == (1, 0)
    # everything unwound: counter, owner, the lock itself
    txq = tun.txqs[0]
    assert sd(net, 0, "xmit_recursion") == 0
    assert txq.f[NETDEV_QUEUE.xmit_lock_owner] == -1
    assert net.locks.owner(txq.xmit_lock) == -1


def test_self_loop_of_non_lltx_tunnel(mknet):
    net = mknet(
        config(
            cpus=1,
            devices=[tunnel("tun0", "tun0")],
            traffic_=[traffic(device="tun0", sockets_per_cpu=1)],
        )
    )
    (sk,) = socks_of(net, 0)
    for _ in range(3):
        xmit(net, 0, sk)
    assert drops(net, "DEAD_LOOP_OWNER") == 3
    assert msgs(net, "tun0", MSG_DEAD_LOOP) == (3, 0)


def test_lltx_tunnel_loop_is_cut_by_recursion_not_owner(mknet):
    net = mknet(
        config(
            cpus=1,
            devices=[tunnel("tun0", "tun0", lltx=True)],
            traffic_=[traffic(device="tun0", sockets_per_cpu=1)],
        )
    )
    (sk,) = socks_of(net, 0)
    xmit(net, 0, sk)
    assert drops(net, "XMIT_RECURSION") == 1 and drops(net) == 1


def test_dead_loop_messages_are_rate_limited_to_10_per_5_seconds(mknet, monkeypatch):
    """net_ratelimit(): a burst of 10, the rest suppressed (but counted),
    until 5 s have passed."""

    class Clock:
        now = 1_000_000_000_000

        def __call__(self) -> int:
            return self.now

    clock = Clock()
    monkeypatch.setattr(dev_mod, "ktime_get_ns", clock)
    net = mknet(
        config(
            cpus=1,
            devices=[vlan("a", "b"), vlan("b", "a")],
            traffic_=[traffic(device="a", sockets_per_cpu=1)],
        )
    )
    (sk,) = socks_of(net, 0)
    for _ in range(15):
        xmit(net, 0, sk)
    assert msgs(net, "b", MSG_DEAD_LOOP) == (10, 5)
    clock.now += 4_900_000_000  # still inside the 5 s window
    xmit(net, 0, sk)
    assert msgs(net, "b", MSG_DEAD_LOOP) == (10, 6)
    clock.now += 200_000_000  # 5.1 s after the burst began: a new window
    for _ in range(12):
        xmit(net, 0, sk)
    assert msgs(net, "b", MSG_DEAD_LOOP) == (20, 8)
    assert drops(net, "XMIT_RECURSION") == 28


def test_rate_limit_is_per_cpu(mknet):
    """netq keeps net_ratelimit state per CPU (documented difference)."""
    net = mknet(
        config(
            cpus=2,
            devices=[vlan("a", "b"), vlan("b", "a")],
            traffic_=[traffic(device="a", sockets_per_cpu=1)],
        )
    )
    s0, s1 = socks_of(net, 0)[0], socks_of(net, 1)[0]
    for _ in range(12):
        xmit(net, 0, s0)
    for _ in range(12):
        xmit(net, 1, s1)
    assert msgs(net, "b", MSG_DEAD_LOOP, cpu=0) == (10, 2)
    assert msgs(net, "b", MSG_DEAD_LOOP, cpu=1) == (10, 2)


def test_rate_limit_state_survives_acting_as_another_cpu(mknet):
    """A single process acting as CPU 0, then CPU 1, then CPU 0 again (as
    percpu.py allows) must not give CPU 0 a fresh burst of 10."""
    net = mknet(
        config(
            cpus=2,
            devices=[vlan("a", "b"), vlan("b", "a")],
            traffic_=[traffic(device="a", sockets_per_cpu=1)],
        )
    )
    s0, s1 = socks_of(net, 0)[0], socks_of(net, 1)[0]
    for _ in range(10):
        xmit(net, 0, s0)
    xmit(net, 1, s1)
    for _ in range(5):
        xmit(net, 0, s0)
    assert msgs(net, "b", MSG_DEAD_LOOP, cpu=0) == (10, 5)


def test_device_down_drops_with_dev_down(mknet):
    net = mknet(
        config(
            cpus=1,
            devices=[phys(), vlan("v0", "eth0")],
            traffic_=[traffic(device="v0", sockets_per_cpu=1)],
        )
    )
    (sk,) = socks_of(net, 0)
    v0 = net.dev_by_name["v0"]
    v0.f[NETDEV.flags] &= ~IFF_UP  # ip link set v0 down
    rc = xmit(net, 0, sk)
    assert rc != NET_XMIT_SUCCESS and sd(net, 0, "xmit_ok") == 0
    assert drops(net, "DEV_DOWN") == 1 and drops(net) == 1
    assert msgs(net, "v0", MSG_DEAD_LOOP) == (0, 0)
    assert msgs(net, "v0", MSG_ASKS_TO_QUEUE) == (0, 0)
    v0.f[NETDEV.flags] |= IFF_UP
    assert xmit(net, 0, sk) == NET_XMIT_SUCCESS
    assert drops(net) == 1


def test_stopped_noqueue_device_asks_to_queue(mknet):
    """A noqueue device whose queue is stopped cannot hold the skb: "Virtual
    device %s asks to queue packet!" and a drop."""
    net = mknet(
        config(
            cpus=1,
            devices=[phys(), vlan("v0", "eth0", lltx=False)],
            traffic_=[traffic(device="v0", sockets_per_cpu=1)],
        )
    )
    (sk,) = socks_of(net, 0)
    txq = net.dev_by_name["v0"].txqs[0]
    net.atomics.set_bit(txq.base + NETDEV_QUEUE.state, QUEUE_STATE_DRV_XOFF)
    rc = xmit(net, 0, sk)
    assert rc != NET_XMIT_SUCCESS
    assert drops(net, "VIRT_QUEUE_STOPPED") == 1 and drops(net) == 1
    assert msgs(net, "v0", MSG_ASKS_TO_QUEUE) == (1, 0)
    assert msgs(net, "v0", MSG_DEAD_LOOP) == (0, 0)
    assert sd(net, 0, "xmit_recursion") == 0
    assert txq.f[NETDEV_QUEUE.xmit_lock_owner] == -1
    assert net.locks.owner(txq.xmit_lock) == -1


def test_deactivated_qdisc_drops(mknet):
    """__QDISC_STATE_DEACTIVATED is tested first, before the bypass."""
    net = mknet(config(cpus=1, devices=[phys()], traffic_=[traffic(sockets_per_cpu=1)]))
    (sk,) = socks_of(net, 0)
    q = qdisc_of(net)
    net.atomics.set_bit(q.base + QDISC.state, QDISC_STATE_DEACTIVATED)
    assert xmit(net, 0, sk) == NET_XMIT_DROP
    assert drops(net, "QDISC_DEACTIVATED") == 1 and drops(net) == 1
    assert q.f[QDISC.bypass] == 0 and q.f[QDISC.enqueued] == 0 and q.f[QDISC.qlen] == 0
    assert sd(net, 0, "xmit_ok") == 0
    assert net.locks.owner(q.root_lock) == -1


def test_vlan_on_multiqueue_device_uses_the_lower_devices_queue_choice(mknet):
    """The vlan's own pick is the single-queue shortcut; the lower device
    then picks (XPS here) and the socket caches the lower device's queue."""
    net = mknet(
        config(
            cpus=2,
            devices=[phys(tx_queues=2, xps={0: "2", 1: "1"}), vlan("v0", "eth0")],
            traffic_=[traffic(device="v0", cpus=[0], sockets_per_cpu=1)],
        )
    )
    (sk,) = socks_of(net, 0)
    xmit(net, 0, sk)
    eth0 = net.dev_by_name["eth0"]
    assert len(ring_descs(eth0.txqs[1])) == 1
    assert sk.f[SOCK.sk_tx_queue_mapping] == 1


def test_noop_qdisc_of_a_deactivated_queue_drops(mknet):
    """dev_deactivate points txq->qdisc at noop_qdisc: noop_enqueue frees the
    skb and returns NET_XMIT_CN."""
    from netq.kernel.core.netdevice import NET_XMIT_CN
    from netq.machine.net import NOOP_QDISC

    net = mknet(config(cpus=1, devices=[phys()], traffic_=[traffic(sockets_per_cpu=1)]))
    (sk,) = socks_of(net, 0)
    txq = net.dev_by_name["eth0"].txqs[0]
    txq.f[NETDEV_QUEUE.qdisc] = NOOP_QDISC
    assert xmit(net, 0, sk) == NET_XMIT_CN
    assert drops(net, "NOOP_QDISC") == 1 and drops(net) == 1
    assert sk.f[SOCK.dropped] == 1
    assert len(ring_descs(txq)) == 0


@pytest.mark.parametrize("profile", ["3.13", "6.18"])
@pytest.mark.parametrize("below", ["deactivated_qdisc", "recursion"])
def test_vlan_returns_the_lower_devices_rc(mknet, profile, below):
    if below == "recursion":
        net = mknet(vlan_stack(LIMITS[profile] + 2, profile))
    else:
        net = mknet(
            config(
                cpus=1,
                profile=profile,
                devices=[phys(), vlan("v1", "eth0")],
                traffic_=[traffic(device="v1", sockets_per_cpu=1)],
            )
        )
        q = qdisc_of(net)
        net.atomics.set_bit(q.base + QDISC.state, QDISC_STATE_DEACTIVATED)
    (sk,) = socks_of(net, 0)
    rc = xmit(net, 0, sk)
    assert drops(net) == 1
    if below == "recursion":
        assert rc < 0  # -ENETDOWN from the refused __dev_queue_xmit
    else:
        assert rc == NET_XMIT_DROP
    assert sd(net, 0, "xmit_ok") == 0


def test_tunnel_returns_ok_whatever_happened_below(mknet):
    """ip_tunnel_xmit is void: the tunnel's ndo_start_xmit returns
    NETDEV_TX_OK and only counts the error."""
    net = mknet(
        config(
            cpus=1,
            devices=[phys(), tunnel("tun0", "eth0")],
            traffic_=[traffic(device="tun0", sockets_per_cpu=1)],
        )
    )
    q = qdisc_of(net)
    net.atomics.set_bit(q.base + QDISC.state, QDISC_STATE_DEACTIVATED)
    (sk,) = socks_of(net, 0)
    assert xmit(net, 0, sk) == NET_XMIT_SUCCESS
    assert drops(net, "QDISC_DEACTIVATED") == 1


def test_noqueue_on_a_physical_device_drops_when_the_ring_is_full(mknet):
    """qdisc noqueue on eth0 (ring of 4): the driver stops the queue when the
    ring fills, and the next skb is refused with "asks to queue"; the NIC's
    wake schedules the (builtin) noqueue qdisc, whose run finds nothing."""
    from netq.kernel.core.dev import net_tx_action

    net = mknet(
        config(
            cpus=1,
            devices=[phys(ring_size=4, qdisc="noqueue")],
            traffic_=[traffic(sockets_per_cpu=1)],
        )
    )
    (sk,) = socks_of(net, 0)
    txq = net.dev_by_name["eth0"].txqs[0]
    rcs = [xmit(net, 0, sk) for _ in range(6)]
    assert rcs[:4] == [NET_XMIT_SUCCESS] * 4 and all(rc < 0 for rc in rcs[4:])
    assert drops(net, "VIRT_QUEUE_STOPPED") == 2
    assert msgs(net, "eth0", MSG_ASKS_TO_QUEUE) == (2, 0)
    assert txq.f[NETDEV_QUEUE.tx_stops] == 1
    nic = Nic(net)
    assert nic.poll() == 4 and txq.f[NETDEV_QUEUE.tx_restart] == 1
    net.bind_cpu(0)
    assert net_tx_action()
    assert xmit(net, 0, sk) == NET_XMIT_SUCCESS
    drain(net, nic)
    assert delivered(net) == 5
    assert generated(net) == delivered(net) + drops(net)
