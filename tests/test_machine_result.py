"""netq.machine.result: the typed result, its JSON Schema, and real runs.

The schema shipped in the package (result.schema.json) and the TypedDicts
of result.py must say the same thing; the JSON of a real run must validate
against the schema and be strict JSON (no NaN or Infinity)."""

from __future__ import annotations

import copy
import json
import os
from importlib import resources

import jsonschema
import pytest

from netq.machine import result
from netq.machine.result import RESULT_VERSION, SCHEMA_FILE
from tests.harness import leftovers, netq

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RUN_TIMEOUT_S = 120

#: each TypedDict and the $defs entry that must describe it
TYPES = {
    "result": result.Result,
    "setup": result.Setup,
    "profile": result.ProfileSetup,
    "lock_setup": result.LockSetup,
    "nic_setup": result.NicSetup,
    "device_setup": result.DeviceSetup,
    "cpu": result.CpuRow,
    "queue": result.QueueRow,
    "fq": result.FqStats,
    "qdisc": result.QdiscRow,
    "lock": result.LockRow,
    "lock_holder": result.LockHolder,
    "message": result.MessageRow,
    "latency": result.Latency,
    "mechanism": result.Mechanism,
    "nic": result.NicRow,
    "projection": result.Projection,
    "check": result.CheckRow,
    "event": result.EventRow,
    "vt": result.VtStats,
    "vt_lock": result.VtLock,
}

#: a run that has a multi-queue device (mq, BQL), an fq device and a vlan
EXPERIMENT = """\
cpus = 2
duration = 0.3
seed = 5
[[devices]]
name = "eth0"
tx_queues = 2
xps = {0 = "1", 1 = "2"}
[[devices]]
name = "eth1"
qdisc = "fq"
[[devices]]
name = "vlan0"
kind = "vlan"
lower = "eth0"
[[traffic]]
[[traffic]]
device = "eth1"
sockets_per_cpu = 2
[[traffic]]
device = "vlan0"
sockets_per_cpu = 1
proto = "tcp"
"""


def schema() -> dict:
    return json.loads(resources.files("netq.machine").joinpath(SCHEMA_FILE).read_text())


def _no_constant(name: str):
    raise ValueError(f"not strict JSON: {name}")


def run_json(tmp_path, *args, code: int = 0) -> dict:
    """Run ``python -m netq.run ARGS --json`` in a subprocess (the tests'
    harness: bounded, its process group ended on a timeout); the parsed
    document.  The run must end with ``code`` and leave no IPC object."""
    out = tmp_path / "run.json"
    r = netq(*args, "--json", str(out), "--quiet", timeout=RUN_TIMEOUT_S)
    assert not leftovers(r.pid), f"the run left IPC objects: {leftovers(r.pid)}"
    assert r.returncode == code, r.output
    return json.loads(out.read_text(), parse_constant=_no_constant)


@pytest.fixture(scope="module")
def experiment_doc(tmp_path_factory) -> dict:
    tmp = tmp_path_factory.mktemp("result")
    exp = tmp / "exp.toml"
    exp.write_text(EXPERIMENT)
    return run_json(tmp, "--config", str(exp))


def validator() -> jsonschema.Draft202012Validator:
    s = schema()
    jsonschema.Draft202012Validator.check_schema(s)
    return jsonschema.Draft202012Validator(s)


def test_schema_is_valid_and_of_this_version():
    s = schema()
    jsonschema.Draft202012Validator.check_schema(s)
    assert s["$defs"]["result"]["properties"]["version"] == {"const": RESULT_VERSION}
    assert f"version {RESULT_VERSION}" in s["title"]


@pytest.mark.parametrize("name", sorted(TYPES))
def test_schema_and_typeddicts_have_the_same_keys(name):
    td = TYPES[name]
    d = schema()["$defs"][name]
    assert set(d["properties"]) == set(td.__required_keys__) | set(td.__optional_keys__)
    assert set(d["required"]) == set(td.__required_keys__)
    assert d["additionalProperties"] is False


@pytest.mark.slow
def test_a_real_run_validates(experiment_doc):
    doc = experiment_doc
    validator().validate(doc)
    assert doc["version"] == RESULT_VERSION and doc["status"] == "ok" and doc["invariants_ok"]
    # the optional parts the experiment was built to produce are there
    assert {q["kind"] for q in doc["qdiscs"]} >= {"mq", "pfifo_fast", "fq", "noqueue"}
    assert any(q["bql"] for q in doc["queues"])
    assert {d["kind"] for d in doc["setup"]["devices"]} == {"phys", "vlan"}
    assert doc["latency"]["count"] == doc["delivered"] > 0


@pytest.mark.slow
def test_a_failed_run_with_events_validates(tmp_path):
    """A run that ends on a broken invariant still writes a valid document,
    with its events (a fault event carries its fault) and the failure."""
    exp = tmp_path / "exp.toml"
    exp.write_text(
        # without BQL: a lost skb's bytes are never completed, and BQL would
        # keep the queue stopped (the run would end stalled, not on the check)
        "cpus = 1\npackets = 200\n[[devices]]\nbql = false\n[[traffic]]\n"
        '[[events]]\nat = 0.0\naction = "fault"\nfault = "lose_one"\n'
    )
    doc = run_json(tmp_path, "--config", str(exp), code=1)
    validator().validate(doc)
    assert doc["status"] == "invariant" and not doc["invariants_ok"]
    assert [(e["action"], e.get("fault")) for e in doc["events"]] == [("fault", "lose_one")]


@pytest.mark.slow
def test_a_preset_with_variants_validates(tmp_path):
    doc = run_json(tmp_path, "--duration", "0.2")
    validator().validate(doc)
    assert len(doc["variants"]) == 2 and doc["preset"] == "default"
    assert all(v["version"] == RESULT_VERSION for v in doc["variants"])


@pytest.mark.parametrize(
    "breakage",
    [
        "missing key",
        "wrong type",
        "unknown key",
        "bql keys missing",
        "fq stats missing",
        "negative count",
        "older version",
    ],
)
@pytest.mark.slow
def test_the_schema_rejects_a_broken_result(experiment_doc, breakage):
    doc = copy.deepcopy(experiment_doc)
    if breakage == "missing key":
        del doc["pps"]
    elif breakage == "wrong type":
        doc["queues"][0]["packets"] = "many"
    elif breakage == "unknown key":
        doc["nic"]["teleported"] = 0
    elif breakage == "bql keys missing":
        q = next(q for q in doc["queues"] if q["bql"])
        del q["bql_limit"]
    elif breakage == "fq stats missing":
        del next(q for q in doc["qdiscs"] if q["kind"] == "fq")["fq"]
    elif breakage == "negative count":
        doc["generated"] = -1
    else:
        doc["version"] = RESULT_VERSION - 1
    assert not validator().is_valid(doc)


def test_nan_is_not_strict_json():
    with pytest.raises(ValueError, match="NaN"):
        json.loads('{"pps": NaN}', parse_constant=_no_constant)
