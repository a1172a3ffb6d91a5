"""The dependencies' usage reporting is off in blockroute's processes (router.vendor_telemetry)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from router.vendor_telemetry import OPT_OUT, opt_out

SLICER = Path(__file__).resolve().parents[2] / "models" / "slicer.onnx"
#: where onnxruntime queues its events for upload, under the user's home
ORT_QUEUE = Path(".cache", "Microsoft", "DeveloperTools", ".onnxruntime")
#: the variables by which onnxruntime (1.32) recognises a CI machine and stays quiet: taken
#: out of the children's environment, or the control below would find nothing in CI
CI_MARKERS = (
    "CI",
    "TF_BUILD",
    "GITHUB_ACTIONS",
    "GITLAB_CI",
    "CIRCLECI",
    "TRAVIS",
    "JENKINS_URL",
    "CODEBUILD_BUILD_ID",
    "BUILDKITE",
    "TEAMCITY_VERSION",
    "APPVEYOR",
    "BITBUCKET_BUILD_NUMBER",
)


def test_opt_out_sets_each_library_s_own_off_value() -> None:
    env: dict[str, str] = {"PATH": "/bin"}
    opt_out(env)
    assert env == {
        "PATH": "/bin",
        "ORT_DISABLE_TELEMETRY": "1",
        "MLFLOW_DISABLE_TELEMETRY": "true",
        "RAY_USAGE_STATS_ENABLED": "0",
    }


def test_a_choice_already_made_is_kept() -> None:
    env = {"RAY_USAGE_STATS_ENABLED": "1", "ORT_DISABLE_TELEMETRY": "0"}
    opt_out(env)
    assert env["RAY_USAGE_STATS_ENABLED"] == "1" and env["ORT_DISABLE_TELEMETRY"] == "0"
    assert env["MLFLOW_DISABLE_TELEMETRY"] == "true"


def test_importing_router_opts_the_process_and_its_children_out() -> None:
    env = {k: v for k, v in os.environ.items() if k not in OPT_OUT}
    code = (
        "import os, subprocess, sys, router;"
        "print(subprocess.run([sys.executable, '-c', 'import os, sys;"
        "sys.stdout.write(os.environ[sys.argv[1]])', sys.argv[1]],"
        " capture_output=True, text=True, check=True).stdout)"
    )
    for name, off in OPT_OUT.items():
        child = subprocess.run(
            [sys.executable, "-c", code, name], env=env, capture_output=True, text=True, timeout=60
        )
        assert child.returncode == 0, child.stderr
        assert child.stdout.strip() == off, name


def test_ray_sees_its_usage_statistics_turned_off() -> None:
    pytest.importorskip("ray")  # the `ray` extra, installed in CI
    env = {k: v for k, v in os.environ.items() if k not in OPT_OUT}
    code = (
        "import router; from ray._common.usage.usage_lib import usage_stats_enabled;"
        "print(usage_stats_enabled())"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split()[-1] == "False"


def _session_in_a_fresh_home(
    home: Path, *, through_router: bool
) -> subprocess.CompletedProcess[str]:
    """One ONNX Runtime session of the shipped policy, in a process whose home is `home`
    and whose environment names none of the opt-outs: through blockroute's own loader,
    or straight from onnxruntime without importing blockroute."""
    env = {k: v for k, v in os.environ.items() if k not in OPT_OUT and k not in CI_MARKERS}
    env["HOME"] = str(home)
    env.pop("XDG_CACHE_HOME", None)
    if through_router:
        code = (
            "import sys; from router.strategies.learned import OnnxPolicy;OnnxPolicy(sys.argv[1])"
        )
    else:
        code = (
            "import sys, onnxruntime as ort;"
            "ort.InferenceSession(sys.argv[1], providers=['CPUExecutionProvider'])"
        )
    return subprocess.run(
        [sys.executable, "-c", code, str(SLICER)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_onnx_runtime_leaves_no_device_id_or_event_queue(tmp_path: Path) -> None:
    plain, ours = tmp_path / "plain", tmp_path / "ours"
    plain.mkdir()
    ours.mkdir()
    # the control: onnxruntime on its own queues its events under the home
    control = _session_in_a_fresh_home(plain, through_router=False)
    assert control.returncode == 0, control.stderr
    if not (plain / ORT_QUEUE).exists():
        pytest.skip("this onnxruntime build reports nothing: nothing to turn off")
    assert (plain / ORT_QUEUE / "deviceid").exists()
    done = _session_in_a_fresh_home(ours, through_router=True)
    assert done.returncode == 0, done.stderr
    assert not (ours / ".cache" / "Microsoft").exists()
