"""The Cluster and Workers config options: types, defaults, Go-json field rules and the reference's error texts."""

import pytest

from scootpy.sched.cluster import (FakeWorkerClient, NodeUpdate, RpcWorkerClient, membership_from_config,
                                   worker_clients_from_config)

pytestmark = pytest.mark.timeout(30)


def initial_nodes(cfg):
    membership = membership_from_config(cfg)
    got = []
    membership._on_change = got.extend
    membership.step()
    assert all(u.kind == "add" for u in got)
    return [u.node_id for u in got]


@pytest.mark.parametrize("cfg", [None, {}, {"Type": ""}, {"Type": None}, {"Type": "memory"}])
def test_memory_cluster_defaults_to_ten_nodes(cfg):
    assert initial_nodes(cfg) == sorted(f"inmemory{i}" for i in range(10))


def test_memory_cluster_count_and_case_insensitive_fields():
    assert initial_nodes({"Type": "memory", "Count": 3}) == ["inmemory0", "inmemory1", "inmemory2"]
    assert initial_nodes({"type": "memory", "count": 2, "Unknown": [1]}) == ["inmemory0", "inmemory1"]
    assert initial_nodes({"Type": "memory", "Count": 0}) == []


def test_static_cluster():
    cfg = {"Type": "static", "Workers": ["w2.example:9092", "10.0.0.1:9092", "w2.example:9092", "[::1]:1"]}
    assert initial_nodes(cfg) == ["10.0.0.1:9092", "[::1]:1", "w2.example:9092"]
    assert initial_nodes({"Type": "static"}) == []


def test_file_and_local_clusters_build(tmp_path):
    watched = membership_from_config({"Type": "file", "Path": str(tmp_path / "m.txt")})
    assert (watched.name, watched.interval) == ("file", 0.5)
    local = membership_from_config({"Type": "local"})
    assert (local.name, local.interval) == ("local", 1.0)  # ps x every second, as the reference


def test_static_update_shape():
    assert membership_from_config({"Type": "static", "Workers": ["a:1"]}).step() == [NodeUpdate("add", "a:1")]


@pytest.mark.parametrize("cfg, text", [
    ({"Type": "foo"}, 'Error parsing Implementations Cluster: "foo" is not a valid Implementation map['),
    ({"Type": "Memory"}, 'Error parsing Implementations Cluster: "Memory" is not a valid Implementation'),
    ({"Type": 5}, "Error parsing type for Implementations Cluster: json: cannot unmarshal number into Go struct "
                  "field .Type of type string"),
    ([1], "Error parsing type for Implementations Cluster: json: cannot unmarshal array"),
    ({"Count": "3"}, "Error parsing variable Cluster: json: cannot unmarshal string into Go struct field "
                     "ClusterMemoryConfig.Count of type int"),
    ({"Count": 1.5}, "cannot unmarshal number 1.5 into Go struct field ClusterMemoryConfig.Count of type int"),
    ({"Count": True}, "cannot unmarshal bool into Go struct field ClusterMemoryConfig.Count"),
    ({"Count": -1}, "Count must be 0..10000, got -1"),
    ({"Count": 10 ** 9}, "Count must be 0..10000"),
    ({"Type": "static", "Workers": "a:1"}, "cannot unmarshal string into Go struct field ClusterStaticConfig.Workers"),
    ({"Type": "static", "Workers": [1]}, "cannot unmarshal number into Go struct field ClusterStaticConfig.Workers"),
    ({"Type": "static", "Workers": ["a:1", "nohost"]}, "invalid worker address 'nohost'"),
    ({"Type": "static", "Workers": ["a:99999"]}, "invalid worker address 'a:99999'"),
    ({"Type": "file"}, '"file" cluster needs a "Path"'),
    ({"Type": "file", "Path": ""}, '"file" cluster needs a "Path"'),
    ({"Type": "file", "Path": 7}, "cannot unmarshal number into Go struct field ClusterFileConfig.Path"),
])
def test_bad_cluster_configs(cfg, text):
    with pytest.raises(ValueError) as info:
        membership_from_config(cfg)
    assert text in str(info.value)


def test_unknown_cluster_type_names_the_valid_ones():
    with pytest.raises(ValueError) as info:
        membership_from_config({"Type": "zk"})
    message = str(info.value)
    assert message.endswith("<nil> <nil>")
    for valid in ("memory", "local", "static", "file"):
        assert f"{valid}:" in message


@pytest.mark.parametrize("cfg", [None, {}, {"Type": ""}, {"Type": "local"}])
def test_default_workers_are_in_process_fakes(cfg):
    client = worker_clients_from_config(cfg)("inmemory3")
    assert isinstance(client, FakeWorkerClient)
    assert client.node_id == "inmemory3"


def test_rpc_workers_polling_period_and_timeout():
    make = worker_clients_from_config({"Type": "rpc", "PollingPeriod": "1.5s"}, timeout=2.0)
    client = make("127.0.0.1:1")
    assert isinstance(client, RpcWorkerClient)
    assert client.node_id == "127.0.0.1:1"
    assert client.polling_period == 1.5
    assert make("127.0.0.1:1") is not client  # a new client per call
    assert worker_clients_from_config({"Type": "rpc"})("h:1").polling_period == 0.25
    assert worker_clients_from_config({"type": "rpc", "pollingperiod": "10ms"})("h:1").polling_period == 0.01


@pytest.mark.parametrize("cfg, text", [
    ({"Type": "thrift"}, 'Error parsing Implementations Workers: "thrift" is not a valid Implementation'),
    ({"Type": "rpc", "PollingPeriod": "abc"}, "time: invalid duration"),
    ({"Type": "rpc", "PollingPeriod": "-1s"}, "PollingPeriod must not be negative"),
    ({"Type": "rpc", "PollingPeriod": 250}, "cannot unmarshal number into Go struct field "
                                            "WorkersThriftConfig.PollingPeriod of type string"),
])
def test_bad_workers_configs(cfg, text):
    with pytest.raises(ValueError) as info:
        worker_clients_from_config(cfg)
    assert text in str(info.value)
