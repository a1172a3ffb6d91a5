"""`backtest --executor ray`: the episodes as Ray tasks give the local run's document."""

import json
import os
import pickle
import signal
import threading
import time
from pathlib import Path

import pytest

from router.cli import main

ARGS = [
    "backtest",
    "--scenarios",
    "calm",
    "--strategies",
    "twap,sor,ac",
    "--episodes",
    "4",
    "--seed0",
    "500",
    "--no-hindsight",
    "--db-url",
    "none",
    "--json",
    "-",
]


def backtest_doc(capsys, *extra: str) -> str:
    """The JSON document, as written, but for how it ran: the wall time, the executor and
    its workers."""
    assert main([*ARGS, *extra]) == 0
    doc = json.loads(capsys.readouterr().out)  # nothing of Ray's reached stdout
    for how in ("wall_s", "executor", "workers", "ray"):
        doc["meta"].pop(how, None)
    return json.dumps(doc)


@pytest.mark.requires_extra("ray", "ray")
def test_ray_on_two_cpus_gives_the_rows_of_a_local_run_on_one_worker(capsys):
    local = backtest_doc(capsys, "--workers", "1")
    on_ray = backtest_doc(capsys, "--workers", "2", "--executor", "ray")
    assert on_ray == local
    assert len(json.loads(local)["episodes"]) == 4


@pytest.mark.requires_extra("ray", "ray")
def test_ray_shares_the_models_and_the_desk_history_through_the_object_store(capsys):
    from router import app

    # sor-ml routes on the dealer and fill models (loaded by the command, put once) and
    # asks calm's dealers (one desk history, simulated by one task for all the others)
    strategies = ["--strategies", "twap,sor-ml"]
    local = backtest_doc(capsys, *strategies, "--workers", "1")
    app.MODELS.clear()  # as a fresh command: the models not yet loaded
    assert main([*ARGS, *strategies, "--workers", "2", "--executor", "ray"]) == 0
    doc = json.loads(capsys.readouterr().out)
    ran = doc["meta"].pop("ray")
    for how in ("wall_s", "executor", "workers"):
        doc["meta"].pop(how)
    assert json.dumps(doc) == local
    models = sum(len(pickle.dumps(m)) for m in app.MODELS.loaded() or ())
    assert ran["object_store_bytes"] > models > 100_000  # the models, once
    assert sum(ran["episodes_by_node"].values()) == 4 and ran["cpus"] == 2


@pytest.mark.requires_extra("ray", "ray")
def test_ray_progress_counts_every_episode_stores_the_runs_and_stops_the_cluster(tmp_path):
    import sqlite3

    import ray

    from router.backtest import backtest
    from router.config import DEFAULT_CONFIG_DIR
    from router.store import Store

    url = f"sqlite:///{tmp_path / 'runs.db'}"
    Store.open(url)  # created before the workers write, as the CLI does
    seen: list[tuple[int, int]] = []
    doc = backtest(
        ["calm"],
        ["twap"],
        5,
        7,
        2,
        DEFAULT_CONFIG_DIR,
        db_url=url,
        progress=lambda done, total: seen.append((done, total)),
        hindsight=False,
        executor="ray",
    )
    assert seen[-1] == (5, 5) and [d for d, _ in seen] == sorted(d for d, _ in seen)
    assert [e["seed"] for e in doc["episodes"]] == [7, 8, 9, 10, 11]
    assert doc["meta"]["executor"] == "ray"
    with sqlite3.connect(tmp_path / "runs.db") as db:  # the workers opened the store
        assert db.execute("SELECT count(*) FROM runs").fetchone() == (5,)
    assert not ray.is_initialized()  # the in-process cluster went with the run


def _kill_first_task_worker(killed: list[int], stop: threading.Event) -> None:
    """kill -9 the first Ray worker seen running a batch of episodes (its process title)."""
    while not stop.is_set() and not killed:
        for proc in Path("/proc").iterdir():
            try:
                title = (proc / "cmdline").read_bytes()
            except OSError:
                continue
            if proc.name.isdigit() and title.startswith(b"ray::run_batch"):
                os.kill(int(proc.name), signal.SIGKILL)
                killed.append(int(proc.name))
                return
        time.sleep(0.05)


@pytest.mark.requires_extra("ray", "ray")
@pytest.mark.skipif(not Path("/proc").is_dir(), reason="finds the worker in /proc")
def test_a_killed_worker_has_its_episodes_run_again_with_the_same_rows():
    from router.backtest import backtest
    from router.config import DEFAULT_CONFIG_DIR

    def run(workers: int, executor: str) -> dict:
        doc = backtest(
            ["calm"],
            ["twap"],
            6,
            30,
            workers,
            DEFAULT_CONFIG_DIR,
            hindsight=False,
            executor=executor,
        )
        doc.pop("meta")
        return doc

    killed: list[int] = []
    stop = threading.Event()
    killer = threading.Thread(target=_kill_first_task_worker, args=(killed, stop))
    killer.start()
    try:
        on_ray = run(2, "ray")
    finally:
        stop.set()
        killer.join()
    assert killed, "no worker was seen running a task"
    assert on_ray == run(1, "local")


@pytest.mark.requires_extra("ray", "ray")
@pytest.mark.skipif(not Path("/proc").is_dir(), reason="finds the worker in /proc")
def test_a_killed_worker_leaves_the_json_on_stdout_alone(capsys):
    # Ray's driver prints "(raylet) A worker died ..." to standard output: not into
    # the document
    killed: list[int] = []
    stop = threading.Event()
    killer = threading.Thread(target=_kill_first_task_worker, args=(killed, stop))
    killer.start()
    try:
        code = main([*ARGS, "--strategies", "twap", "--episodes", "6", "--workers", "2",
                     "--executor", "ray"])  # fmt: skip
    finally:
        stop.set()
        killer.join()
    assert code == 0 and killed, "no worker was seen running a task"
    doc = json.loads(capsys.readouterr().out)
    assert len(doc["episodes"]) == 6


@pytest.mark.requires_extra("ray", "ray")
@pytest.mark.parametrize("address", ["ray://127.0.0.1:1", "127.0.0.1:1"])
def test_an_unreachable_ray_address_is_refused_at_once(capsys, address):
    # a closed port: refused by the connection check, not after Ray's 30-s client timeout
    # (ray://) or its minutes of retries (a GCS address)
    start = time.monotonic()
    assert main([*ARGS, "--executor", "ray", "--ray-address", address]) == 2
    assert time.monotonic() - start < 10.0
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and f"cannot reach {address}" in err[0]
