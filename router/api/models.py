"""The model registry's handlers (/api/models...): list, show, promote and roll back
versions, shadow mode's report, and the algo wheel's results."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from typing import Any, Protocol

import structlog
from aiohttp import web

from models.catalog import CatalogError, check_family
from router.api.bodies import PromoteBody, RollbackBody, parse
from router.api.errors import ApiError, invalid
from router.api.http import DIGITS, json_response, query_number, read_object
from router.desk_api import DeskPort
from router.model_admin import ModelAdmin, WorseThanChampion, change_json

log = structlog.get_logger("blockroute.api")


class ModelSwaps(Protocol):
    """What the API asks of the service's hot swap (router.hotswap.ModelSwapper): serve
    the champions now, which champions could not be served, which challengers it
    shadows and what the algo wheel's challenger arm serves."""

    unserved: dict[str, dict[str, Any]]

    @property
    def shadowed(self) -> dict[str, int]: ...

    @property
    def wheel_versions(self) -> dict[str, int] | None: ...

    async def sync(self) -> Any: ...


@dataclass(eq=False)
class ModelsApi:
    """The registry's handlers, with what they share."""

    desk: DeskPort  # its clock, for the wheel's --since
    models: ModelAdmin | None = None  # the model registry, if the service has one
    swapper: ModelSwaps | None = None  # serves its champions live (router.hotswap)
    shadow: Callable[[], dict[str, Any]] | None = None  # shadow mode's report (the desk's)
    # one alias move at a time: each reads the aliases it then moves
    _moving: asyncio.Lock = field(default_factory=asyncio.Lock)

    def _admin(self) -> ModelAdmin:
        if self.models is None:
            raise ApiError(
                404,
                "no_registry",
                "this service has no model registry: set [models] registry = true in its config",
            )
        return self.models

    async def _catalog(self, work: Callable[[ModelAdmin], Any], in_path: Collection[str]) -> Any:
        """Run `work` on the registry off the loop (it reads and writes a database and
        files); a CatalogError answers 404 for what the path names, 422 for the body's
        input, 409 for what cannot be done now."""
        admin = self._admin()
        try:
            return await asyncio.get_running_loop().run_in_executor(None, work, admin)
        except WorseThanChampion as exc:
            raise ApiError(409, "worse_than_champion", str(exc), exc.field) from None
        except CatalogError as exc:
            if exc.kind == "conflict":
                raise ApiError(409, "conflict", str(exc), exc.field) from None
            if exc.kind == "missing" and exc.field in in_path:
                raise ApiError(404, "not_found", str(exc), exc.field) from None
            raise invalid(exc.field, str(exc)) from None

    async def list_models(self, request: web.Request) -> web.Response:
        versions = await self._catalog(lambda admin: admin.models(), ())
        doc: dict[str, Any] = {"models": [v.summary() for v in versions]}
        return json_response({**doc, **self._served()})

    def _served(self) -> dict[str, Any]:
        """`served`: the version of each family the service serves now; `unserved`, if
        any: champions it could not load (it serves the version before), and why;
        `shadowed`: the challengers asked beside them (shadow mode); `wheel_challenger`:
        what the algo wheel's challenger arm serves."""
        doc: dict[str, Any] = {}
        if self._admin().served:
            doc["served"] = dict(self._admin().served)
        if self.swapper is not None and self.swapper.unserved:
            doc["unserved"] = {f: dict(v) for f, v in self.swapper.unserved.items()}
        if self.swapper is not None and self.swapper.shadowed:
            doc["shadowed"] = dict(self.swapper.shadowed)
        if self.swapper is not None and self.swapper.wheel_versions is not None:
            doc["wheel_challenger"] = dict(self.swapper.wheel_versions)
        return doc

    async def _serve_champions(self) -> None:
        """After a move: swap the service's models now (loaded off the loop), so that
        the answer says what is served. A failure to load is in `unserved`; a failure
        to read the registry leaves the swap to the service's next look."""
        if self.swapper is None:
            return
        try:
            await self.swapper.sync()
        except Exception as exc:  # the move stands: it is journaled
            log.warning("models not swapped after a move: the watch retries", error=str(exc))

    async def shadow_models(self, request: web.Request) -> web.Response:
        # without a model registry there is no challenger: nothing to report, which the
        # dashboard reads as such (rather than an error at every look)
        report = self.shadow() if self.shadow is not None else {"families": []}
        return json_response(report)

    async def show_model(self, request: web.Request) -> web.Response:
        family, text = request.match_info["family"], request.match_info["version"]
        if not DIGITS.fullmatch(text) or int(text) < 1:
            raise ApiError(
                404, "not_found", f"no version {text!r}: versions are 1, 2, ...", "version"
            )
        found = await self._catalog(
            lambda admin: admin.show(family, int(text)), ("family", "version")
        )
        return json_response(found.to_json())

    async def promote_model(self, request: web.Request) -> web.Response:
        family = request.match_info["family"]
        self._admin()
        body = parse(PromoteBody, await read_object(request))
        return await self._move_alias(
            lambda admin: admin.promote(
                family, body.version, body.by, body.reason, body.alias, force=body.force
            )
        )

    async def rollback_model(self, request: web.Request) -> web.Response:
        family = request.match_info["family"]
        self._admin()
        body = parse(RollbackBody, await read_object(request))
        return await self._move_alias(
            lambda admin: admin.rollback(family, body.by, body.reason, body.version)
        )

    async def _move_alias(self, move: Callable[[ModelAdmin], Any]) -> web.Response:
        """A promotion or a rollback: one alias move at a time, then the champions
        served; the answer is the change and what is served now."""
        async with self._moving:
            event = await self._catalog(move, ("family",))
            await self._serve_champions()
        return json_response({**change_json(event), **self._served()})

    async def model_wheel(self, request: web.Request) -> web.Response:
        """The algo wheel's live results (router.wheel_stats), from the journal, off the
        loop (it reads every parent of the wheel)."""
        from router.wheel_stats import WheelError, WheelParent, parse_since, wheel_report

        admin = self._admin()
        query = request.query
        kwargs: dict[str, Any] = {}
        for name in ("min_effect_bps", "alpha", "power"):
            if name in query:
                kwargs[name] = query_number(query[name], name)
        try:
            since = query.get("since")
            since_ns = None if since is None else parse_since(since, self.desk.now_ns())
            family = query.get("family")
            if family is not None:
                check_family(family)
        except WheelError as exc:
            raise invalid(exc.field or "since", str(exc)) from None
        except CatalogError as exc:
            raise invalid("family", str(exc)) from None

        def report() -> dict[str, Any]:
            rows = admin.journal.wheel_parents(since_ns)
            parents = (WheelParent.of(r) for r in rows)
            return wheel_report(parents, family=family, since_ns=since_ns, **kwargs)

        try:
            doc = await asyncio.get_running_loop().run_in_executor(None, report)
        except WheelError as exc:
            if exc.field is None:  # nothing to report yet
                raise ApiError(404, "not_found", str(exc)) from None
            raise invalid(exc.field, str(exc)) from None
        return json_response(doc)
