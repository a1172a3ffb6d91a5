"""config/ray: the Ray cluster definitions that the README points to. Ray's own cluster
launcher validates the on-premise one (its JSON schema and its provider's preparation);
the KubeRay manifest is checked for what this project relies on."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from router.config import DEFAULT_CONFIG_DIR

RAY_DIR = DEFAULT_CONFIG_DIR / "ray"


def _load(name: str) -> dict:
    return yaml.safe_load((RAY_DIR / name).read_text())


@pytest.mark.requires_extra("ray", "ray")
def test_the_launcher_config_is_one_that_rays_cluster_launcher_accepts():
    from ray.autoscaler._private.util import prepare_config, validate_config

    config = prepare_config(_load("cluster.yaml"))
    validate_config(config)  # raises on any field Ray does not know
    assert config["available_node_types"]["local.cluster.node"]["max_workers"] == 2
    # the check is real: a misspelt field is refused
    bad = {**config, "docker": {**config["docker"], "imag": "x"}}
    with pytest.raises(Exception, match="imag"):
        validate_config(bad)


def test_every_node_runs_the_one_image_with_token_authentication():
    launcher = _load("cluster.yaml")
    kuberay = _load("kuberay.yaml")
    image = launcher["docker"]["image"]
    pods = [kuberay["spec"]["headGroupSpec"]["template"]]
    pods += [group["template"] for group in kuberay["spec"]["workerGroupSpecs"]]
    assert {c["image"] for pod in pods for c in pod["spec"]["containers"]} == {image}
    assert "--env RAY_AUTH_MODE=token" in launcher["docker"]["run_options"]
    assert kuberay["kind"] == "RayCluster" and kuberay["apiVersion"] == "ray.io/v1"


def test_the_configs_live_in_the_shipped_configuration():
    assert Path(RAY_DIR).is_dir()
    assert {p.name for p in RAY_DIR.glob("*.yaml")} == {"cluster.yaml", "kuberay.yaml"}
