"""cluster.yaml and cluster-onprem.yaml pass Ray's own config checks, offline.

The check is what `ray up` runs before any cloud call (`commands._bootstrap_config`):
`prepare_config` (merges the provider's defaults.yaml) then `validate_config` (Ray's
ray-schema.json, head_node_type, min/max workers). Ray's raw schema is applied first to
the file as written, because `prepare_config` crashes with a TypeError on some bad
shapes (a string setup_commands) instead of naming them; for the local provider the
legacy top-level `min_workers` (which only it accepts) is left out of that raw check.
No credentials and no network: the provider's `bootstrap_config` (boto3, SSH) is not run.
"""

import copy
import importlib.metadata
import json
import os
import socket
from pathlib import Path

import jsonschema
import pytest
import ray.autoscaler
import yaml
from ray.autoscaler._private.util import prepare_config, validate_config  # private: no public API

REPO = Path(__file__).resolve().parents[3]
AWS = REPO / "cluster.yaml"
ONPREM = REPO / "cluster-onprem.yaml"
SCHEMA = json.loads((Path(ray.autoscaler.__file__).parent / "ray-schema.json").read_text())


def validate_cluster_config(config: dict) -> dict:
    """Ray's validation of a cluster config; returns the prepared config."""
    raw = copy.deepcopy(config)
    if raw.get("provider", {}).get("type") == "local":
        raw.pop("min_workers", None)
    jsonschema.validate(raw, SCHEMA)
    prepared = prepare_config(copy.deepcopy(config))
    validate_config(prepared)
    return prepared


def load(path: Path) -> dict:
    return yaml.safe_load(path.read_text())


@pytest.mark.parametrize("path", [AWS, ONPREM], ids=["aws", "onprem"])
def test_cluster_files_validate(path):
    prepared = validate_cluster_config(load(path))
    assert prepared["head_node_type"] in prepared["available_node_types"]
    for key in ("setup_commands", "head_setup_commands", "worker_setup_commands",
                "head_start_ray_commands", "worker_start_ray_commands"):
        assert all(isinstance(c, str) for c in prepared[key]), key


@pytest.mark.parametrize("path", [AWS, ONPREM], ids=["aws", "onprem"])
def test_setup_installs_pinned_ray_and_archsweep_with_cupy(path):
    config = load(path)
    commands = config["setup_commands"]
    assert isinstance(commands, list)
    ray_version = importlib.metadata.version("ray")  # launcher and cluster must run the same Ray
    assert any(f'"ray[default,tune]=={ray_version}"' in c for c in commands), commands
    project = next(remote for remote, local in config["file_mounts"].items() if local == ".")
    assert any(f'pip install -q -e "{project}[cuda12]"' in c for c in commands), commands
    # the same RAY_AUTH_MODE on every node, and the token they share
    assert any("RAY_AUTH_MODE=token" in c for c in commands)
    assert "~/.ray/auth_token" in config["file_mounts"].values()


def test_aws_head_is_cpu_only_and_gpu_workers_autoscale():
    prepared = validate_cluster_config(load(AWS))
    types = prepared["available_node_types"]
    head = types[prepared["head_node_type"]]
    assert head["resources"] == {"CPU": 0} and head["max_workers"] == 0
    worker = types["gpu_worker"]
    assert worker["resources"]["GPU"] == 1
    assert worker["node_config"]["InstanceType"] == "g5.xlarge"
    assert 0 <= worker["min_workers"] <= worker["max_workers"] <= prepared["max_workers"]
    # setup_commands merged into both node kinds; boto3 only where the autoscaler runs
    assert prepared["worker_setup_commands"] == prepared["setup_commands"]
    assert any("boto3" in c for c in prepared["head_setup_commands"])


def test_onprem_becomes_one_local_node_type_with_all_hosts():
    config = load(ONPREM)
    prepared = validate_cluster_config(config)
    assert config["provider"]["type"] == "local"
    assert list(prepared["available_node_types"]) == ["local.cluster.node"]
    node_type = prepared["available_node_types"]["local.cluster.node"]
    n_hosts = len(config["provider"]["worker_ips"])
    assert node_type["min_workers"] == node_type["max_workers"] == n_hosts
    assert {"ssh_user", "ssh_private_key"} <= set(config["auth"])
    assert any("ARCHSWEEP_SHARED_DIRS=/mnt/shared" in c for c in config["setup_commands"])


# ------------------------------------------------------------- broken copies fail


@pytest.mark.parametrize("path", [AWS, ONPREM], ids=["aws", "onprem"])
def test_string_setup_commands_are_refused(path):
    config = load(path)
    config["setup_commands"] = "pip install archsweep"
    with pytest.raises(jsonschema.ValidationError, match="is not of type 'array'"):
        validate_cluster_config(config)


def test_missing_head_node_type_is_refused():
    config = load(AWS)
    del config["head_node_type"]  # defaults.yaml's ray.head.default is not one of ours
    with pytest.raises(ValueError, match="head_node_type"):
        validate_cluster_config(config)


def test_unquoted_json_resources_in_a_command_is_refused():
    config = load(ONPREM)
    # the YAML trap: `": "` inside an unquoted list item makes it a mapping
    config["worker_start_ray_commands"] = yaml.safe_load(
        "- ray start --address=$RAY_HEAD_IP:6379 --resources='{\"GPU\": 1}'"
    )
    assert isinstance(config["worker_start_ray_commands"][0], dict)
    with pytest.raises(jsonschema.ValidationError, match="is not of type 'string'"):
        validate_cluster_config(config)


def test_min_workers_above_max_is_refused():
    config = load(AWS)
    config["available_node_types"]["gpu_worker"]["min_workers"] = config["max_workers"] + 1
    with pytest.raises(ValueError, match="max_workers"):
        validate_cluster_config(config)


@pytest.mark.parametrize("path", [AWS, ONPREM], ids=["aws", "onprem"])
def test_validation_needs_no_credentials_and_no_network(path, monkeypatch, tmp_path):
    for key in [k for k in os.environ if k.startswith("AWS_")]:
        monkeypatch.delenv(key)
    monkeypatch.setenv("HOME", str(tmp_path))  # no ~/.aws, no ~/.ssh, no ~/.ray/auth_token

    def no_network(*args, **kwargs):
        raise AssertionError("the offline validation tried to open a connection")

    monkeypatch.setattr(socket.socket, "connect", no_network)
    monkeypatch.setattr(socket, "create_connection", no_network)
    validate_cluster_config(load(path))
