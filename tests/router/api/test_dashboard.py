"""The dashboard in a real headless Chromium (Debian's package) driven by Playwright.

The fake desk (conftest) works each order off in a few fills over a few hundred ms, so
the page must show an order appear and fill from the WebSocket alone. In CI (env CI set)
a missing browser or Playwright fails the test: CI must install both; elsewhere the test
is skipped with the reason.

BLOCKROUTE_CHROMIUM overrides the browser path; BLOCKROUTE_DASHBOARD_SHOT names a file
to copy the screenshot to (to look at it outside pytest's tmp_path).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestServer
from prometheus_client.parser import text_string_to_metric_families

from router.api import make_app

TOKEN = "s3cret-token"
STRATEGIES = ["twap", "vwap", "pov", "ac", "sor", "ml"]
CHROMIUM = Path(os.environ.get("BLOCKROUTE_CHROMIUM", "/usr/bin/chromium"))
TIMEOUT_MS = 8000


def _unavailable(why: str) -> None:
    if os.environ.get("CI"):
        pytest.fail(f"{why}; CI must install it for the dashboard tests", pytrace=False)
    pytest.skip(f"{why} (the dashboard tests need it; in CI this fails)")


@pytest.fixture
async def browser() -> AsyncIterator[Any]:
    try:
        from playwright.async_api import async_playwright
    except ImportError:
        _unavailable("playwright is not installed (pip install playwright)")
    if not CHROMIUM.exists():
        _unavailable(f"no Chromium at {CHROMIUM} (apt-get install chromium)")
    async with async_playwright() as p:
        b = await p.chromium.launch(executable_path=str(CHROMIUM))
        try:
            yield b
        finally:
            await b.close()


class Page:
    """A page on the dashboard that records console errors and every request's URL."""

    def __init__(self, page: Any, origin: str) -> None:
        self.page = page
        self.origin = origin
        self.errors: list[str] = []
        self.urls: list[str] = []
        page.on("console", self._console)
        page.on("pageerror", lambda e: self.errors.append(str(e)))
        page.on("request", lambda r: self.urls.append(r.url))

    def _console(self, message: Any) -> None:
        if message.type == "error":
            self.errors.append(message.text)

    def check_clean(self, *refused: int) -> None:
        """No script error, no console error but the HTTP statuses in `refused`, and no
        request that leaves this server."""
        expected = tuple(f"status of {status} " for status in refused)
        assert [e for e in self.errors if not (expected and any(x in e for x in expected))] == []
        offsite = [u for u in self.urls if not u.startswith(("http://127.0.0.1", "ws://127.0.0.1"))]
        assert offsite == []  # works offline: no CDN, no font service


async def _open(
    browser: Any, desk: Any, token: str | None = TOKEN, **app_kw: Any
) -> tuple[TestServer, Page]:
    server = TestServer(make_app(desk, token, strategies=STRATEGIES, **app_kw))
    await server.start_server()
    context = await browser.new_context(viewport={"width": 1400, "height": 1000})
    page = Page(await context.new_page(), str(server.make_url("/")))
    page.page.set_default_timeout(TIMEOUT_MS)
    await page.page.goto(page.origin)
    await page.page.wait_for_selector('[data-testid="connection"][data-state="live"]')
    return server, page


async def _submit(
    p: Any, *, qty: str, horizon: str = "60", token: str = TOKEN, **more: str
) -> None:
    await p.fill('[data-testid="f-token"]', token)
    await p.fill('[data-testid="f-qty"]', qty)
    await p.fill('[data-testid="f-horizon"]', horizon)
    await p.select_option('[data-testid="f-side"]', more.get("side", "buy"))
    await p.select_option('[data-testid="f-strategy"]', more.get("strategy", "twap"))
    await p.click('[data-testid="submit-order"]')


async def test_an_order_from_the_form_appears_and_fills(
    browser: Any, fake_desk_type: Any, tmp_path: Path
) -> None:
    desk = fake_desk_type(auto_fill=True, slices=4, fill_interval_s=0.15)
    server, page = await _open(browser, desk)
    p = page.page
    try:
        await _submit(p, qty="12,000")
        row = p.locator('[data-testid="order-row"][data-parent-id="P1"]')
        await row.wait_for()
        await p.wait_for_selector(
            '[data-testid="order-row"][data-parent-id="P1"][data-status="filled"]'
        )
        assert await row.locator('[data-testid="order-filled"]').inner_text() == "12,000 / 12,000"
        assert (await row.locator('[data-testid="order-avg"]').inner_text()).startswith("100.02")
        (order,) = desk.submitted
        assert (order.client, order.qty, order.strategy) == ("api", 12_000, "twap")

        # the selected order's detail: venues, decisions, chart, TCA once done
        assert await p.inner_text('[data-testid="detail-id"]') == "P1 · buy 12,000 QDI"
        await p.wait_for_selector('[data-testid="detail-is"]')
        # the detail panel refreshes on its own after the fill: wait for its last rows
        try:
            await p.wait_for_function(
                "document.querySelectorAll('[data-testid=\"venue-row\"]').length === 4"
                " && document.querySelectorAll('[data-testid=\"decision-row\"]').length === 4"
            )
        except Exception as exc:  # which rows never came, for the next time it fails
            venue_rows = await p.locator('[data-testid="venue-row"]').count()
            decision_rows = await p.locator('[data-testid="decision-row"]').count()
            raise AssertionError(
                f"{venue_rows} venue rows and {decision_rows} decision rows, not 4 and 4;"
                f" page errors {page.errors}"
            ) from exc
        venues = p.locator('[data-testid="venue-row"]')
        assert await venues.count() == 4
        names = {await venues.nth(i).get_attribute("data-venue") for i in range(4)}
        assert names == {"LIT-A", "DARK-X", "LIT-B", "DEALER-1"}
        assert await p.locator('[data-testid="decision-row"]').count() == 4
        first = p.locator('[data-testid="decision-row"]').first
        assert "DEALER-1" in await first.locator(".alt.chosen").inner_text()
        points = await p.get_attribute('[data-testid="chart-realised"]', "points")
        assert points is not None and len(points.split()) >= 10  # 4 steps and both ends
        mix = await row.locator('[data-testid="venue-mix"]').get_attribute("title")
        assert mix == "lit 50%, dark 25%, rfq 25%"
        assert await p.locator('[data-testid="dealer-row"]').count() == 1
        assert "child order filled" in await p.inner_text('[data-testid="activity"]')

        shot = tmp_path / "dashboard.png"
        await p.screenshot(path=str(shot), full_page=True)
        assert shot.stat().st_size > 10_000
        if os.environ.get("BLOCKROUTE_DASHBOARD_SHOT"):
            shutil.copy(shot, os.environ["BLOCKROUTE_DASHBOARD_SHOT"])
        page.check_clean()
    finally:
        await server.close()


async def test_the_model_shadow_shows_agreement_and_where_the_challenger_differs(
    browser: Any, fake_desk_type: Any, shadow_report: tuple[dict[str, Any], dict[str, Any]]
) -> None:
    """Shadow mode: the agreement of each family shadowed, its latest disagreements, and
    on a decision the family whose challenger would have acted otherwise; the card goes
    when nothing is shadowed any more."""
    report, panel = shadow_report
    shown = {"report": report}
    desk = fake_desk_type()
    server, page = await _open(browser, desk, shadow=lambda: shown["report"])
    p = page.page
    try:
        await p.wait_for_selector('[data-testid="shadow"]:not([hidden])')
        rows = p.locator('[data-testid="shadow-row"]')
        assert [await rows.nth(i).get_attribute("data-family") for i in range(2)] == [
            "dealer",
            "slicer",
        ]  # fill: no challenger, nothing compared
        dealer = p.locator('[data-testid="shadow-row"][data-family="dealer"]')
        assert await dealer.locator('[data-testid="shadow-agreement"]').inner_text() == "0.0%"
        assert (await dealer.inner_text()).split("\t")[:4] == ["dealer", "v2", "v3", "1"]
        slicer = p.locator('[data-testid="shadow-row"][data-family="slicer"]')
        assert await slicer.locator('[data-testid="shadow-agreement"]').inner_text() == "100.0%"
        (differs,) = await p.locator('[data-testid="shadow-disagreement"]').all()
        text = await differs.inner_text()
        assert "ask A, B (P any quote 90%)" in text and "ask A, C (P any quote 80%)" in text
        assert "p_any_quote 0.900 → 0.800" in text and "+1 more" in text  # 3 shown, 1 more

        # a decision whose dealer challenger would have asked another panel
        await _submit(p, qty="500")
        await p.click('[data-testid="order-row"][data-parent-id="P1"]')
        desk.decide("P1", "LIT-A", 100)
        desk.decide("P1", "DEALER-1", 100, shadow={"dealer": panel})
        flag = p.locator('[data-testid="decision-shadow"]')
        await flag.wait_for()
        assert await flag.count() == 1  # the other decision has no shadow
        assert "dealer: ask A, C" in await flag.inner_text()

        shown["report"] = {"families": []}  # the challengers promoted or removed
        await p.wait_for_selector('[data-testid="shadow"][hidden]', state="attached")
        page.check_clean()
    finally:
        await server.close()


async def test_the_form_shows_what_is_wrong(browser: Any, fake_desk_type: Any) -> None:
    desk = fake_desk_type()
    server, page = await _open(browser, desk)
    p = page.page
    try:
        await _submit(p, qty="-5")
        await p.wait_for_selector('[data-testid="f-qty"][aria-invalid="true"]')
        assert "qty" in await p.inner_text('[data-testid="form-error"]')
        await _submit(p, qty="100", token="wrong")
        await p.wait_for_selector('[data-testid="f-token"][aria-invalid="true"]')
        assert "token" in await p.inner_text('[data-testid="form-error"]')
        assert desk.submitted == []
        # the token is kept for the tab: a reload finds it
        await p.reload()
        assert await p.input_value('[data-testid="f-token"]') == "wrong"
        page.check_clean(401, 422)  # the browser logs the refused calls by design
    finally:
        await server.close()


async def test_cancel_and_the_kill_switch(browser: Any, fake_desk_type: Any) -> None:
    desk = fake_desk_type(auto_fill=True, slices=2, fill_interval_s=30)  # stays working
    server, page = await _open(browser, desk)
    p = page.page
    try:
        await _submit(p, qty="500")
        row = '[data-testid="order-row"][data-parent-id="P1"]'
        await p.click(f'{row} [data-testid="pause"]')
        await p.wait_for_selector(f'{row}[data-status="paused"]')
        await p.click(f'{row} [data-testid="resume"]')
        await p.wait_for_selector(f'{row}[data-status="working"]')
        await p.click(f'{row} [data-testid="cancel"]')
        await p.wait_for_selector(f'{row}[data-status="canceled"]')
        assert desk.cancels[0].reason == "canceled from the dashboard"

        await _submit(p, qty="700")
        await p.wait_for_selector('[data-testid="order-row"][data-parent-id="P2"]')
        await p.fill("#kill-reason", "desk drill")
        await p.click('[data-testid="kill-engage"]')
        await p.wait_for_selector('[data-testid="kill-switch"][data-engaged="true"]')
        assert "desk drill" in await p.inner_text('[data-testid="kill-state"]')
        await p.wait_for_selector(
            '[data-testid="order-row"][data-parent-id="P2"][data-status="canceled"]'
        )
        await p.click('[data-testid="kill-release"]')
        await p.wait_for_selector('[data-testid="kill-switch"][data-engaged="false"]')
        assert not desk.kill
        page.check_clean()
    finally:
        await server.close()


async def test_drift_alerts_the_fallback_and_resuming_the_models(
    browser: Any, fake_desk_type: Any
) -> None:
    desk = fake_desk_type(auto_fill=True, slices=3, fill_interval_s=0.3)
    server, page = await _open(browser, desk)
    p = page.page
    try:
        card = '[data-testid="drift-state"]'
        await p.wait_for_selector(f'{card}[data-state="ok"]')
        assert await p.locator('[data-testid="drift-row"]').count() == 2
        assert await p.locator('[data-testid="drift-resume"]').is_hidden()
        desk.drift_alert()  # published: the page reads /api/drift again at once
        await p.wait_for_selector(f'{card}[data-state="fallback"]')
        alert = p.locator('[data-testid="drift-alert"][data-figure="fill/ece_passive"]')
        assert "P(fill within 30 s)" in await alert.inner_text()
        assert "heuristic router" in await p.inner_text('[data-testid="drift-fallback"]')
        fill_row = p.locator('[data-testid="drift-row"][data-family="fill"]')
        assert "0.700 (n 20)" in await fill_row.inner_text()
        assert "drift alert" in await p.inner_text('[data-testid="activity"]')
        # a decision made while the models are withdrawn says so
        await _submit(p, qty="900")
        await p.wait_for_selector('[data-testid="decision-fallback"]')
        await p.click('[data-testid="drift-resume"]')
        # given back; the alert itself is still raised (the operator has looked at it)
        await p.wait_for_selector(f'{card}[data-state="alert"]')
        assert await p.locator('[data-testid="drift-fallback"]').is_hidden()
        assert desk.drift_history[0]["kind"] == "fallback_released"
        assert desk.drift_history[0]["by"] == "dashboard"
        page.check_clean()
    finally:
        await server.close()


async def test_the_page_reconnects_after_being_dropped(browser: Any, fake_desk_type: Any) -> None:
    desk = fake_desk_type()
    server, page = await _open(browser, desk, ws_queue_size=2)
    p = page.page
    try:
        await _submit(p, qty="100")
        await p.wait_for_selector('[data-testid="order-row"][data-parent-id="P1"]')
        for _ in range(20):  # a burst the page cannot read in time: the hub drops it
            desk.fill("P1", 5, 100.0, "LIT-A")
        # the reconnect's snapshot brings the page up to date
        await p.wait_for_selector(
            '[data-testid="order-row"][data-parent-id="P1"][data-status="filled"]'
        )
        await p.wait_for_selector('[data-testid="connection"][data-state="live"]')
        metrics = await p.request.get(f"{page.origin}metrics")
        families = text_string_to_metric_families(await metrics.text())
        values = {s.name: s.value for family in families for s in family.samples}
        assert values["blockroute_ws_dropped_slow_total"] == 1  # it was dropped...
        assert values["blockroute_ws_connections_total"] == 2  # ...and came back
        page.check_clean()
    finally:
        await server.close()


async def test_a_real_desk_fills_an_order_from_the_dashboard(browser: Any, tmp_path: Path) -> None:
    from router.service import simulated_desk  # the real desk on simulated markets

    async with simulated_desk(tmp_path, sim_speed=100) as desk:
        server = TestServer(make_app(desk, TOKEN))
        await server.start_server()
        try:
            context = await browser.new_context(viewport={"width": 1400, "height": 1000})
            page = Page(await context.new_page(), str(server.make_url("/")))
            p = page.page
            p.set_default_timeout(TIMEOUT_MS)
            await p.goto(page.origin)
            await p.wait_for_selector('[data-testid="connection"][data-state="live"]')
            # 60 s of service time, 0.6 s of wall time at 100x
            await _submit(p, qty="2000", horizon="60", strategy="twap")
            row = p.locator('[data-testid="order-row"]').first
            await row.wait_for()
            pid = await row.get_attribute("data-parent-id")
            await p.wait_for_selector(
                f'[data-testid="order-row"][data-parent-id="{pid}"][data-status="filled"]'
            )
            assert await row.locator('[data-testid="order-filled"]').inner_text() == (
                "2,000 / 2,000"
            )
            view = desk.parent(str(pid))
            assert view.filled_qty == 2000 and view.client == "api"
            await p.wait_for_selector('[data-testid="venue-row"]')
            await p.wait_for_selector('[data-testid="decision-row"]')
            await p.wait_for_selector('[data-testid="detail-is"]')
            page.check_clean()
        finally:
            await server.close()
