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


def _python(
    code: str, *args: str, without: tuple[str, ...] = (), **env: str
) -> subprocess.CompletedProcess[str]:
    """`python -c code args` in an environment that names none of the opt-outs (nor any
    of `without`), with `env` added."""
    keep = {k: v for k, v in os.environ.items() if k not in OPT_OUT and k not in without}
    return subprocess.run(
        [sys.executable, "-c", code, *args],
        env={**keep, **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_importing_router_opts_the_process_and_its_children_out() -> None:
    code = (
        "import os, subprocess, sys, router;"
        "print(subprocess.run([sys.executable, '-c', 'import os, sys;"
        "sys.stdout.write(os.environ[sys.argv[1]])', sys.argv[1]],"
        " capture_output=True, text=True, check=True).stdout)"
    )
    for name, off in OPT_OUT.items():
        child = _python(code, name)
        assert child.returncode == 0, child.stderr
        assert child.stdout.strip() == off, name


def test_the_image_sets_the_same_variables() -> None:
    # for the processes that Ray's cluster launcher starts in the image without blockroute
    dockerfile = (Path(__file__).resolve().parents[2] / "Dockerfile").read_text()
    for name, off in OPT_OUT.items():
        assert f"{name}={off}" in dockerfile, name


def test_ray_sees_its_usage_statistics_turned_off() -> None:
    pytest.importorskip("ray")  # the `ray` extra, installed in CI
    done = _python(
        "import router; from ray._common.usage.usage_lib import usage_stats_enabled;"
        "print(usage_stats_enabled())"
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split()[-1] == "False"


def _session_in_a_fresh_home(
    home: Path, *, through_router: bool
) -> subprocess.CompletedProcess[str]:
    """One ONNX Runtime session of the shipped policy, in a process whose home is `home`
    and whose environment names none of the opt-outs nor CI's markers: through
    blockroute's own loader, or straight from onnxruntime without importing blockroute."""
    if through_router:
        code = (
            "import sys; from router.strategies.learned import OnnxPolicy; OnnxPolicy(sys.argv[1])"
        )
    else:
        code = (
            "import sys, onnxruntime as ort;"
            "ort.InferenceSession(sys.argv[1], providers=['CPUExecutionProvider'])"
        )
    return _python(code, str(SLICER), without=(*CI_MARKERS, "XDG_CACHE_HOME"), HOME=str(home))


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
