"""Promotion and rollback reach the running service: each family's champion in the model
registry is swapped in while parents work, without a restart and without pausing them.

How the service learns of a move. The registry's `champion` alias is the one truth of
what must be served (moving it is the only way to change the models), so the service
compares it with what it serves: at once after a move through its own HTTP API (the
answer then says what is served), and every `[models] poll_interval` for a move made
elsewhere (`blockroute models promote|rollback` on the same registry, or MLflow's own
tools). Listening on MQTT instead would miss moves: the bus is optional (`--mqtt-url
none`), the CLI publishes only with `--mqtt-url`, and a message sent while the broker
was down is never seen, which would leave the service serving the old champion for good.
Reading three aliases every couple of seconds, off the loop, costs a few milliseconds.

How a swap happens (`ModelSwapper.sync`). The new version's files are loaded, checked
and warmed up on an executor thread (`ModelRegistry.load_family_now`), so the event
loop, which runs every decision, FIX and the API, never waits for them. Then one
assignment on the loop (`ModelRegistry.swap`) puts the new models in place: a decision
runs whole on the loop, so each one sees the old version or the new, never a mix.
Working parents keep going: their executions hold `ModelRegistry.live()` views that read
the models served at every call, so a parent's next decision uses the new version (a
parent's schedule is re-paced by the served slicer at its next step). A version that
fails to load is not served: the old one serves on, the failure is logged, published
and shown in GET /api/models (`unserved`), and it is not retried until the champion
moves again. The version a swap replaced is kept loaded, so that rolling back to it is
instant.

Every swap (or failure) is logged with the seconds the load took and published as a
`ModelServed` event (MQTT `blockroute/models/<family>/served`, retained).

The challenger's set. A service that runs the algo wheel (router.wheel) serves a
second set of models beside the champions: each family's challenger (its champion where
it has none), in a `ServedSet` of its own that the same `sync` keeps on the catalog,
loaded the same way (off the loop, then one assignment), at the start too (the service
syncs once before its desk starts). A challenger's version that fails to load is not
served (the set keeps what it held; at the start the family stays missing and the wheel
does not run), is logged and kept in the set's `unserved`, and is not retried until
the alias moves again. Its swaps are logged, not published: the `served` topics are
the champions'.

Shadow mode (`shadow`, `[models] shadow`): the `challenger` alias is followed the same
way. A family whose challenger is a version other than the one served has it loaded off
the loop and put beside the champion in one assignment (`ModelRegistry.set_challenger`),
where every decision that asks the champion asks it too (router.shadow); a challenger
alias removed, or now on the champion's version (a promotion), stops the asking. Each
change is logged and published as `ModelShadowed` (`blockroute/models/<family>/shadowed`,
retained); a challenger that fails to load is not asked, and not retried until its alias
moves (`unshadowed`).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import structlog

from models.catalog import CHALLENGER, CHAMPION, FAMILIES, SHIPPED_VERSION
from router.desk_api import DeskEvent, ModelServed, ModelShadowed
from router.model_admin import ModelAdmin
from router.registry import Loaded, ModelRegistry, ServedSet

log = structlog.get_logger("blockroute.models")


class ModelSwapper:
    """Keeps `served` (the desk's model registry) on the champions of `admin`'s registry.
    `now_ns`: the wall clock of the events; `timer`: seconds, for the load times;
    `publish`: called on the loop with each ModelServed and ModelShadowed (the MQTT
    bus); `challenger`: the challenger's set to keep too (the algo wheel's); `shadow`:
    also hold each family's challenger beside its champion (shadow mode; the timer times
    its calls). See the module's docstring for both."""

    def __init__(
        self,
        admin: ModelAdmin,
        served: ModelRegistry,
        *,
        now_ns: Callable[[], int],
        timer: Callable[[], float],
        publish: Callable[[DeskEvent], None] | None = None,
        challenger: ServedSet | None = None,
        shadow: bool = False,
    ) -> None:
        self._admin = admin
        self._registry = served
        self.challenger = challenger
        self._now_ns = now_ns
        self._timer = timer
        self._publish = publish
        self.shadow = shadow
        self.unshadowed: dict[str, dict[str, Any]] = {}  # challengers that did not load
        self._lock = asyncio.Lock()  # one sync at a time: the API's and the watch's
        # the version a swap replaced, still loaded: a rollback to it swaps at once
        self._kept: dict[str, tuple[int, Path, Loaded]] = {}
        self.unserved: dict[str, dict[str, Any]] = {}  # champions that did not load

    @property
    def served(self) -> dict[str, int]:
        """The version of each family served now."""
        return self._admin.served

    async def sync(self) -> list[ModelServed]:
        """Serve each family's champion, if it is not served yet, and in shadow mode its
        challenger (see the module's docstring); returns the champions' swaps. Raises
        what reading the registry raises."""
        loop = asyncio.get_running_loop()
        async with self._lock:
            aliases = await loop.run_in_executor(None, self._aliases)
            done = []
            for family, (version, _) in aliases.items():
                if version == self.served.get(family):
                    self.unserved.pop(family, None)  # rolled back to what serves
                    continue
                failed = self.unserved.get(family)
                if failed is not None and failed["version"] == version:
                    continue  # said once: a version's files do not mend themselves
                done.append(await self._swap(family, version))
            if self.challenger is not None:
                for family, (version, challenger) in aliases.items():
                    wheel_version = challenger if challenger is not None else version
                    await self._swap_challenger(self.challenger, family, wheel_version)
            for family, (_, challenger) in aliases.items():
                # a challenger on the version served is the champion: nothing to compare
                if not self.shadow or challenger == self.served.get(family):
                    challenger = None
                await self._shadow(family, challenger)
            return done

    def _aliases(self) -> dict[str, tuple[int, int | None]]:
        """(champion, challenger) of each family: what the registry says now."""
        catalog = self._admin.catalog
        return {
            f: (
                catalog.alias(f, CHAMPION) or SHIPPED_VERSION,
                # read for shadow mode, and for the wheel's set (its champion without one)
                catalog.alias(f, CHALLENGER) if self.shadow or self.challenger else None,
            )
            for f in FAMILIES
        }

    @property
    def wheel_versions(self) -> dict[str, int] | None:
        """What the algo wheel's challenger set serves, by family (None: no wheel)."""
        return None if self.challenger is None else self.challenger.versions

    @property
    def shadowed(self) -> dict[str, int]:
        """The challenger version asked beside each family's champion now."""
        return {f: held.version for f, held in self._registry.challengers().items()}

    async def _shadow(self, family: str, version: int | None) -> None:
        """Ask `version` beside `family`'s champion (None: no challenger)."""
        before = self.shadowed.get(family)
        if version == before:
            self.unshadowed.pop(family, None)
            return
        failed = self.unshadowed.get(family)
        if version is not None and failed is not None and failed["version"] == version:
            return  # said once, as for a champion
        start = self._timer()
        error = ""
        if version is None:
            self._registry.clear_challenger(family)
            self.unshadowed.pop(family, None)
        else:
            try:
                loop = asyncio.get_running_loop()
                folder, loaded = await loop.run_in_executor(None, self._load, family, version)
            except Exception as exc:  # the champion trades on; nothing is compared
                error = _first_line(exc)
                self.unshadowed[family] = {"version": version, "error": error}
                self._registry.clear_challenger(family)
            else:
                # one assignment on the loop, as a swap: between two decisions
                self._registry.set_challenger(family, version, folder, loaded, self._timer)
                self.unshadowed.pop(family, None)
        load_s = self._timer() - start
        if error:
            log.error(
                "challenger not loaded: nothing is shadowed",
                family=family,
                challenger=version,
                load_s=round(load_s, 3),
                error=error,
            )
        else:
            log.warning(
                "challenger shadowed" if version is not None else "challenger no longer shadowed",
                family=family,
                from_version=before,
                to_version=version,
                champion=self.served.get(family),
                load_s=round(load_s, 3),
            )
        event = ModelShadowed(
            self._now_ns(),
            family,
            before,
            version,
            not error,
            load_s,
            error,
        )
        if self._publish is not None:
            self._publish(event)

    def _load(self, family: str, version: int) -> tuple[Path, Loaded]:
        """On an executor thread: the version's files, loaded as serving loads them."""
        folder = self._admin.catalog.files(family, version)
        return folder, ModelRegistry.load_family_now(family, folder)

    async def _swap(self, family: str, version: int) -> ModelServed:
        before = self.served.get(family)
        start = self._timer()
        kept = self._kept.get(family)
        try:
            if kept is not None and kept[0] == version:
                folder, loaded = kept[1], kept[2]
            else:
                loop = asyncio.get_running_loop()
                folder, loaded = await loop.run_in_executor(None, self._load, family, version)
        except Exception as exc:  # whatever fails, the old version serves on
            load_s = self._timer() - start
            error = _first_line(exc)
            self.unserved[family] = {"version": version, "error": error}
            log.error(
                "model not swapped: the old version serves on",
                family=family,
                champion=version,
                served=before,
                load_s=round(load_s, 3),
                error=error,
            )
            event = ModelServed(self._now_ns(), family, before, version, False, load_s, error)
        else:
            replaced = self._registry.loaded_family(family)
            if before is not None and replaced is not None:
                self._kept[family] = (before, self._registry.folders()[family], replaced)
            # one assignment on the loop: between two decisions
            self._registry.swap(family, folder, loaded, version=version)
            self.served[family] = version
            self.unserved.pop(family, None)
            load_s = self._timer() - start
            # at the level a serve shows by default, as a kill switch change: the models
            # that trade changed under the working parents
            log.warning(
                "models swapped",
                family=family,
                from_version=before,
                to_version=version,
                load_s=round(load_s, 3),
                reused=kept is not None and kept[0] == version,
            )
            event = ModelServed(self._now_ns(), family, before, version, True, load_s)
        if self._publish is not None:
            self._publish(event)
        return event

    async def _swap_challenger(self, served: ServedSet, family: str, version: int) -> None:
        """Serve `version` as `family` in the challenger's set, if it does not yet (see
        the module's docstring)."""
        if served.versions.get(family) == version:
            served.unserved.pop(family, None)
            return
        failed = served.unserved.get(family)
        if failed is not None and failed["version"] == version:
            return
        before = served.versions.get(family)
        start = self._timer()
        try:
            loop = asyncio.get_running_loop()
            folder, loaded = await loop.run_in_executor(None, self._load, family, version)
        except Exception as exc:  # the set serves what it served
            error = _first_line(exc)
            served.unserved[family] = {"version": version, "error": error}
            log.error(
                "challenger's model not swapped: the algo wheel serves what it served",
                family=family,
                challenger=version,
                served=before,
                error=error,
            )
            return
        served.registry.swap(family, folder, loaded)  # on the loop: between two decisions
        served.versions[family] = version
        served.unserved.pop(family, None)
        log.warning(
            "challenger's models swapped",
            family=family,
            from_version=before,
            to_version=version,
            load_s=round(self._timer() - start, 3),
        )

    async def watch(self, every_s: float, stop: asyncio.Event) -> None:
        """Sync every `every_s` seconds until `stop` is set (moves made outside this
        service's API). A registry that cannot be read is logged and tried again."""
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), every_s)
            if stop.is_set():
                return
            try:
                await self.sync()
            except Exception as exc:  # the desk trades on what it serves
                log.warning("model registry not read: serving what is served", error=str(exc))


def _first_line(exc: Exception) -> str:
    """What a failed load says, in one line for the log, the event and the API."""
    return str(exc).strip().splitlines()[0][:300] if str(exc).strip() else repr(exc)
