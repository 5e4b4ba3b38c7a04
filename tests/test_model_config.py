"""Configuration rejection: a bad value raises netq.machine.config.ConfigError whose
``field`` (and message) names where it is, and building a Net from it
creates no IPC object."""

from __future__ import annotations

import pytest

from netq.machine.config import ConfigError, DeviceConfig, RunConfig, TrafficConfig, from_dict
from netq.machine.net import Net
from tests.modelutil import config, phys, traffic, tunnel, vlan


def rejected(cfg: RunConfig, field: str) -> ConfigError:
    with pytest.raises(ConfigError) as e:
        cfg.validate()
    assert e.value.field == field
    assert str(e.value).startswith(field + ": ")
    return e.value


@pytest.mark.parametrize("mask", ["xyz", "0x1", "1 2", "g"])
def test_xps_mask_not_hex(mask):
    rejected(config(cpus=2, devices=[phys(tx_queues=2, xps={0: mask})]), "device eth0.xps tx-0")


def test_xps_mask_names_cpu_beyond_cpus():
    e = rejected(config(cpus=2, devices=[phys(tx_queues=2, xps={1: "4"})]), "device eth0.xps tx-1")
    assert "CPU" in str(e)


def test_xps_for_a_queue_that_does_not_exist():
    rejected(config(cpus=2, devices=[phys(tx_queues=2, xps={2: "1"})]), "device eth0.xps")


def test_xps_mask_with_more_groups_than_cpus_is_a_config_error(owner):
    cfg = config(cpus=2, devices=[phys(tx_queues=2, xps={0: "00000000,00000001"})])
    with pytest.raises(ConfigError) as e:
        Net(cfg, owner)
    assert e.value.field == "device eth0.xps tx-0"
    assert owner.names() == []


@pytest.mark.parametrize("size", [100, 3, 0, 2, 131072])
def test_ring_size_must_be_a_power_of_two_from_4(size):
    e = rejected(config(devices=[phys(ring_size=size)]), "device eth0.ring_size")
    assert "power of two" in str(e)


def test_zero_tx_queues():
    rejected(config(devices=[phys(tx_queues=0)]), "device eth0.tx_queues")


def test_real_tx_queues_above_tx_queues():
    rejected(config(devices=[phys(tx_queues=2, real_tx_queues=3)]), "device eth0.real_tx_queues")


def test_unknown_profile():
    e = rejected(config(profile="4.0"), "profile")
    assert "3.13" in str(e) and "6.18" in str(e)


def test_unknown_strategy():
    e = rejected(config(strategy="ticket"), "strategy")
    assert "busylock" in str(e) and "rootlock" in str(e)


@pytest.mark.parametrize("kind", ["vlan", "tunnel"])
@pytest.mark.parametrize("qdisc", ["pfifo_fast", "pfifo", "mq"])
def test_virtual_device_with_a_qdisc(kind, qdisc):
    d = DeviceConfig(name="v0", kind=kind, lower="eth0", qdisc=qdisc)
    rejected(config(devices=[phys(), d]), "device v0.qdisc")


@pytest.mark.parametrize("make", [vlan, tunnel])
def test_virtual_device_without_lower(make):
    d = make("v0", "eth0")
    d.lower = None
    rejected(config(devices=[phys(), d]), "device v0.lower")


def test_virtual_device_with_unknown_lower():
    rejected(config(devices=[phys(), vlan("v0", "eth9")]), "device v0.lower")


def test_physical_device_with_lower():
    d = phys()
    d.lower = "eth1"
    rejected(config(devices=[d, phys("eth1")]), "device eth0.lower")


def test_traffic_class_beyond_queues():
    rejected(
        config(
            devices=[phys(tx_queues=4, num_tc=2, tc_to_txq=[[2, 0], [3, 2]], prio_tc_map=[0] * 16)]
        ),
        "device eth0.tc_to_txq[1]",
    )


def test_traffic_on_unknown_device():
    rejected(config(traffic_=[traffic(device="eth7")]), "traffic[0].device")


def test_traffic_cpu_out_of_range():
    rejected(config(cpus=2, traffic_=[traffic(cpus=[0, 2])]), "traffic[0].cpus")


def test_unknown_key_in_experiment_file():
    with pytest.raises(ConfigError) as e:
        from_dict({"devices": [{"name": "eth0", "rings": 4}]})
    assert e.value.field == "devices[0].rings"


def test_xps_queue_key_not_a_number_in_experiment_file():
    with pytest.raises(ConfigError) as e:
        from_dict({"devices": [{"name": "eth0", "tx_queues": 2, "xps": {"tx0": "1"}}]})
    assert e.value.field == "devices[0].xps"


def test_net_validates_before_creating_anything(owner):
    cfg = config(devices=[phys(ring_size=100)])
    with pytest.raises(ConfigError):
        Net(cfg, owner)
    assert owner.names() == []


def test_valid_config_passes():
    cfg = RunConfig(
        cpus=2,
        seed=1,
        devices=[phys(tx_queues=4, xps={0: "1", 1: "2", 2: "3"}), vlan("v0", "eth0")],
        traffic=[TrafficConfig(device="v0")],
    )
    assert cfg.validate() is cfg


def test_device_loops_are_found_and_legal():
    from netq.app.presets import recursion_devices

    cfg = config(cpus=1, devices=recursion_devices(stack_depth=3))
    cfg.validate()
    assert cfg.device_loops() == [["loopa", "loopb"], ["tun0", "tun1"]]
    assert config(cpus=1).device_loops() == []


def test_a_physical_lltx_device_needs_a_qdisc():
    config(cpus=1, devices=[phys(lltx=True)]).validate()  # the qdisc runner serialises
    cfg = config(cpus=1, devices=[phys(lltx=True, qdisc="noqueue")])
    with pytest.raises(ConfigError, match="lltx"):
        cfg.validate()
