"""`blockroute models list|show|promote|rollback`: the registry beside --db-url, the
CONTRACT.md document of `list`, bad input as one line with exit status 2 and nothing
changed, and a promotion published on MQTT (Mosquitto, BLOCKROUTE_MQTT_URL or
127.0.0.1:1883) as the service publishes it."""

from __future__ import annotations

import asyncio
import json
import shutil
import uuid
from pathlib import Path

import aiomqtt
import pytest

from models.serving.artifacts import MODELS_DIR, family_files
from router.bus import parse_mqtt_url
from router.cli import main
from tests.router.test_bus import broker_url  # noqa: F401  (the shared broker fixture)

pytestmark = pytest.mark.requires_extra("registry", "mlflow")


def cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def db(registry_db_url: str) -> list[str]:
    return ["--db-url", registry_db_url]


def _challenger(tmp_path: Path, db: list[str]) -> None:
    """A second dealer version, the challenger, as `train dealer --register` leaves it."""
    from router.model_admin import open_admin

    folder = tmp_path / "trained"
    folder.mkdir()
    for path in family_files("dealer", MODELS_DIR):
        shutil.copy(path, folder / path.name)
    admin = open_admin(db[1], lambda: 1)
    try:
        admin.register("dealer", folder, "ci", "trained", {"seed": 7})
    finally:
        admin.close()


def test_list_shows_the_shipped_artifacts_as_version_1_champion(capsys, db) -> None:
    code, out, err = cli(capsys, "models", "list", *db, "--json", "-")
    assert code == 0, err
    doc = json.loads(out)
    assert [(m["family"], m["version"], m["aliases"]) for m in doc["models"]] == [
        (f, 1, ["champion"]) for f in ("dealer", "fill", "slicer")
    ]
    row = doc["models"][0]
    assert set(row) == {"family", "version", "aliases", "metrics", "source", "created"}
    assert all(isinstance(v, float) for v in row["metrics"].values())
    code, out, _ = cli(capsys, "models", "list", *db)
    assert code == 0 and "champion" in out and "respond.auc=" in out


def test_show_promote_rollback(capsys, db, tmp_path: Path) -> None:
    _challenger(tmp_path, db)
    code, out, err = cli(
        capsys, "models", "promote", "dealer", "--by", "alice", "--reason", "better", *db,
        "--json", "-",
    )  # fmt: skip
    assert code == 0, err
    assert json.loads(out) | {"ts_ns": 0} == {
        "family": "dealer", "alias": "champion", "from_version": 1, "to_version": 2,
        "action": "promote", "by": "alice", "reason": "better", "ts_ns": 0,
        "forced": False, "override": None,
    }  # fmt: skip
    code, out, _ = cli(capsys, "models", "show", "dealer", *db, "--json", "-")
    shown = json.loads(out)
    assert shown["version"] == 2 and shown["aliases"] == ["challenger", "champion"]
    assert shown["params"]["seed"] == "7" and shown["lineage"]["replaces"] == "1"
    code, out, _ = cli(
        capsys, "models", "rollback", "dealer", "--version", "1", "--by", "bob", "--reason", "no",
        *db,
    )  # fmt: skip
    assert code == 0 and "dealer champion: version 2 -> version 1 (rollback by bob: no)" in out


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["show", "nope"], "unknown model family 'nope'"),
        (["show", "dealer", "--version", "7"], "dealer has no version 7"),
        (["promote", "dealer", "--version", "9", "--reason", "x"], "dealer has no version 9"),
        (["promote", "dealer", "--version", "1", "--reason", "x"], "already the champion"),
        (["promote", "dealer", "--alias", "boss", "--reason", "x"], "invalid choice: 'boss'"),
        (["promote", "dealer", "--version", "2", "--reason", " "], "reason must not be blank"),
        (["promote", "dealer", "--version", "0", "--reason", "x"], "must be > 0"),
        (["rollback", "fill", "--reason", "x"], "fill has no earlier champion"),
        (["rollback", "fill", "--version", "1", "--reason", "x"], "fill has no earlier champion"),
        (["promote", "dealer", "--reason", "x", "--mqtt-url", "http://h"], "scheme 'http'"),
    ],
)
def test_bad_input_exits_2_with_one_line_and_changes_nothing(capsys, db, tmp_path, args, message):
    _challenger(tmp_path, db)
    code, _, err = cli(capsys, "models", *args, *db)
    assert code == 2
    assert err.startswith("blockroute: error: ") and message in err
    assert len(err.strip().splitlines()) == 1
    _, out, _ = cli(capsys, "models", "list", *db, "--json", "-")
    champions = {
        m["family"]: m["version"] for m in json.loads(out)["models"] if "champion" in m["aliases"]
    }
    assert champions == {"dealer": 1, "fill": 1, "slicer": 1}


async def _subscribe(
    url: str, topic: str, got: list[aiomqtt.Message], ready: asyncio.Event
) -> None:
    address = parse_mqtt_url(url)
    async with aiomqtt.Client(address.host, address.port) as client:
        await client.subscribe(topic, qos=1)
        ready.set()
        async for message in client.messages:
            if message.payload:
                got.append(message)
                return


async def test_a_promotion_is_published_on_mqtt(capsys, db, tmp_path, broker_url) -> None:  # noqa: F811
    _challenger(tmp_path, db)
    root = f"blockroute-test/{uuid.uuid4().hex[:12]}/"
    topic = f"{root}models/dealer/champion"
    got: list[aiomqtt.Message] = []
    ready = asyncio.Event()
    task = asyncio.create_task(_subscribe(broker_url, topic, got, ready))
    await asyncio.wait_for(ready.wait(), 5)
    argv = ["models", "promote", "dealer", "--by", "alice", "--reason", "go", *db]
    argv += ["--mqtt-url", broker_url, "--mqtt-root", root]
    # the command runs its own event loop: off this one
    code = await asyncio.to_thread(main, argv)
    assert code == 0, capsys.readouterr().err
    await asyncio.wait_for(task, 5)
    payload = json.loads(bytes(got[0].payload))  # type: ignore[arg-type]
    assert payload["type"] == "model_alias_changed"
    assert (payload["family"], payload["from_version"], payload["to_version"]) == ("dealer", 1, 2)
    assert (payload["by"], payload["reason"]) == ("alice", "go")
    address = parse_mqtt_url(broker_url)
    async with aiomqtt.Client(address.host, address.port) as client:
        await client.publish(topic, b"", qos=1, retain=True)  # clear the retained message


def test_a_worse_challenger_needs_force(capsys, db, tmp_path: Path) -> None:
    from router.model_admin import open_admin

    folder = tmp_path / "worse"
    folder.mkdir()
    for path in family_files("fill", MODELS_DIR):
        shutil.copy(path, folder / path.name)
    meta = json.loads((folder / "fill.meta.json").read_text())
    meta["metrics"]["passive"]["auc"] = 0.85  # the shipped champion's: 0.898
    (folder / "fill.meta.json").write_text(json.dumps(meta))
    admin = open_admin(db[1], lambda: 1)
    try:
        admin.register("fill", folder, "ci", "trained", {})
    finally:
        admin.close()
    argv = ["models", "promote", "fill", "--by", "alice", "--reason", "try", *db]
    code, out, err = cli(capsys, *argv)
    assert code == 2 and out == "" and len(err.strip().splitlines()) == 1
    assert "passive.auc 0.8500 vs the champion's 0.8982" in err and "force" in err
    code, out, err = cli(capsys, *argv, "--force", "--json", "-")
    assert code == 0, err
    doc = json.loads(out)
    assert (doc["to_version"], doc["forced"]) == (2, True)
    assert doc["override"] == "passive.auc 0.8500 vs the champion's 0.8982"
