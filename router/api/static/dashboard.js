// The blockroute live dashboard: plain JavaScript, no build step, no external request.
//
// State comes from the WebSocket (/ws): a snapshot of the parent orders on connect, then
// every desk event as it happens; the per-order details (fills, decisions, schedule, TCA)
// are read from the REST API when an order is selected and then kept up to date from the
// events. Everything is drawn from `state` by render(), coalesced to one frame, and all
// server text goes in through textContent (never innerHTML).
"use strict";

(() => {
  const NS_PER_MS = 1e6;
  const KIND_COLORS = { lit: "#0072B2", dark: "#E69F00", rfq: "#009E73" };
  const KINDS = ["lit", "dark", "rfq"];
  const MAX_DETAIL_FILL_FETCH = 40; // venue mix of the newest orders, fetched once each
  const MAX_ACTIVITY = 60;
  const TOKEN_KEY = "blockroute.apiToken";

  const state = {
    orders: new Map(), // parent_id -> view (ParentView JSON)
    fills: new Map(), // parent_id -> Map(exec_id -> fill)
    fillsLoaded: new Set(),
    selected: null,
    decisions: [],
    schedule: null,
    tca: null,
    scorecard: [],
    drift: null, // GET /api/drift
    shadow: [], // GET /api/models/shadow: one entry per model family
    kill: { engaged: false, reason: "" },
    clock: { ns: 0, at: 0, rate: 1 }, // service ns at local ms `at`, and its pace
    activity: [],
    tokenConfigured: true,
  };

  const $ = (id) => document.getElementById(id);
  const fmtInt = new Intl.NumberFormat("en-US", { maximumFractionDigits: 0 });

  // ------------------------------------------------------------------------ helpers

  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === null || v === undefined || v === false) continue;
      if (k === "class") node.className = v;
      else if (k === "style") node.style.cssText = v;
      else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
      else node.setAttribute(k, v === true ? "" : String(v));
    }
    for (const c of children.flat()) {
      if (c === null || c === undefined || c === false) continue;
      node.append(c instanceof Node ? c : document.createTextNode(String(c)));
    }
    return node;
  }

  function svg(tag, attrs, ...children) {
    const node = document.createElementNS("http://www.w3.org/2000/svg", tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v !== null && v !== undefined) node.setAttribute(k, String(v));
    }
    for (const c of children.flat()) {
      if (c === null || c === undefined) continue;
      node.append(c instanceof Node ? c : document.createTextNode(String(c)));
    }
    return node;
  }

  const num = (v, d = 2) =>
    v === null || v === undefined || !Number.isFinite(v)
      ? "–"
      : v.toLocaleString("en-US", { minimumFractionDigits: d, maximumFractionDigits: d });
  const pct = (v, d = 0) => (Number.isFinite(v) ? num(100 * v, d) + "%" : "–");
  const qty = (v) => (Number.isFinite(v) ? fmtInt.format(v) : "–");

  function clockText(ns) {
    if (!ns) return "–";
    const d = new Date(ns / NS_PER_MS);
    const p = (n) => String(n).padStart(2, "0");
    return `${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}`;
  }

  function duration(seconds) {
    if (!Number.isFinite(seconds)) return "–";
    const s = Math.max(0, Math.round(seconds));
    const h = Math.floor(s / 3600);
    const m = Math.floor((s % 3600) / 60);
    const r = s % 60;
    if (h) return `${h} h ${m ? m + " min" : ""}`.trim();
    if (m) return `${m} min ${r ? r + " s" : ""}`.trim();
    return `${r} s`;
  }

  function serviceNow() {
    const c = state.clock;
    if (!c.ns) return 0;
    return c.ns + (Date.now() - c.at) * c.rate * NS_PER_MS;
  }

  function noteServiceTime(ns) {
    // events carry the service clock: keep the estimate from running behind them
    if (ns && ns > serviceNow()) {
      state.clock.ns = ns;
      state.clock.at = Date.now();
    }
  }

  function niceStep(span, count) {
    const raw = span / Math.max(1, count);
    const mag = Math.pow(10, Math.floor(Math.log10(raw)));
    for (const m of [1, 2, 2.5, 5, 10]) if (m * mag >= raw) return m * mag;
    return 10 * mag;
  }

  function ticks(lo, hi, count) {
    if (!(hi > lo)) return [lo];
    const step = niceStep(hi - lo, count);
    const out = [];
    for (let v = Math.ceil(lo / step) * step; v <= hi + step * 1e-9; v += step) out.push(v);
    return out;
  }

  // --------------------------------------------------------------------------- api

  function token() {
    return $("f-token").value.trim();
  }

  async function api(method, path, body) {
    const headers = { Accept: "application/json" };
    if (method !== "GET") {
      headers["Content-Type"] = "application/json";
      if (token()) headers.Authorization = `Bearer ${token()}`;
    }
    const resp = await fetch(path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    let data = null;
    try {
      data = await resp.json();
    } catch (_) {
      data = null;
    }
    if (!resp.ok) {
      const err = new Error((data && data.message) || `${resp.status} ${resp.statusText}`);
      err.status = resp.status;
      err.field = data && data.field;
      throw err;
    }
    return data;
  }

  function flash(text, isError) {
    const box = $("flash");
    box.textContent = text;
    box.className = isError ? "flash error" : "flash";
    box.hidden = false;
    clearTimeout(flash.timer);
    flash.timer = setTimeout(() => (box.hidden = true), isError ? 10000 : 5000);
  }

  function explain(err) {
    if (err.status === 401) return `${err.message}: enter the API token in the order form`;
    return err.message;
  }

  // --------------------------------------------------------------------- websocket

  let socket = null;
  let backoffMs = 500;

  function setConnection(live) {
    const c = $("conn");
    c.textContent = live ? "live" : "reconnecting…";
    c.className = live ? "pill live" : "pill wait";
    c.dataset.state = live ? "live" : "reconnecting";
  }

  function connect() {
    const proto = location.protocol === "https:" ? "wss:" : "ws:";
    socket = new WebSocket(`${proto}//${location.host}/ws`);
    socket.onopen = () => {
      backoffMs = 500;
      setConnection(true);
    };
    socket.onmessage = (msg) => {
      let event;
      try {
        event = JSON.parse(msg.data);
      } catch (_) {
        return;
      }
      onEvent(event);
    };
    socket.onclose = () => {
      setConnection(false);
      setTimeout(connect, backoffMs);
      backoffMs = Math.min(backoffMs * 2, 5000);
    };
  }

  function onEvent(ev) {
    noteServiceTime(ev.ts_ns || ev.now_ns);
    if (ev.type === "snapshot") {
      state.orders = new Map(ev.orders.map((o) => [o.parent_id, o]));
      state.kill = ev.kill_switch;
      state.fillsLoaded.clear(); // fills missed while disconnected: read them again
      if (state.selected && !state.orders.has(state.selected)) state.selected = null;
      if (!state.selected && ev.orders.length) select(ev.orders[0].parent_id);
      else if (state.selected) loadDetail(state.selected);
      loadVenueMixes();
      render();
      return;
    }
    if (ev.order) upsertOrder(ev.order);
    if (ev.type === "child_order_filled") addFill(ev);
    if (ev.type === "kill_switch") state.kill = { engaged: ev.engaged, reason: ev.reason };
    if (ev.parent_id && ev.parent_id === state.selected) onSelectedEvent(ev);
    if (ev.type === "rfq") throttle("scorecard", 2000, loadScorecard);
    if (ev.type === "drift_alert" || ev.type === "drift_fallback") throttle("drift", 200, loadDrift);
    // routing decisions and child-order chatter have their own table: keep the feed readable
    if (ev.type !== "child_order" && ev.type !== "decision_recorded") addActivity(ev);
    renderSoon();
  }

  // The newest view of an order wins: an HTTP answer can arrive after the WebSocket
  // already told of fills that came later (a short order may fill within milliseconds).
  function upsertOrder(view) {
    const known = state.orders.get(view.parent_id);
    if (!known || (known.updated_ns || 0) <= (view.updated_ns || 0)) {
      state.orders.set(view.parent_id, view);
    }
  }

  function addFill(ev) {
    const fills = fillsOf(ev.parent_id);
    fills.set(ev.exec_id, {
      exec_id: ev.exec_id,
      ts_ns: ev.ts_ns,
      venue: ev.venue,
      venue_kind: ev.venue_kind,
      qty: ev.last_qty,
      price: ev.last_px,
    });
  }

  function onSelectedEvent(ev) {
    if (ev.type === "decision_recorded") {
      state.decisions.unshift({
        decision_id: ev.decision_id,
        ts_ns: ev.ts_ns,
        chosen: ev.chosen,
        inputs: ev.inputs,
        alternatives: ev.alternatives,
        fallback: ev.fallback || undefined,
        shadow: ev.shadow,
      });
      state.decisions.length = Math.min(state.decisions.length, 10);
      throttle("schedule", 1000, () => loadSchedule(ev.parent_id));
    }
    if (ev.type === "order_completed" || ev.type === "order_expired") {
      loadSchedule(ev.parent_id);
      loadTca(ev.parent_id);
    }
  }

  const timers = {};
  function throttle(key, ms, fn) {
    if (timers[key]) return;
    timers[key] = setTimeout(() => {
      timers[key] = null;
      fn();
    }, ms);
  }

  function addActivity(ev) {
    const o = ev.order;
    let text = "";
    if (ev.type === "child_order_filled") {
      text = `${qty(ev.last_qty)} @ ${num(ev.last_px, 4)} on ${ev.venue}`;
    } else if (ev.type === "order_rejected") text = `${ev.cl_ord_id}: ${ev.text}`;
    else if (ev.type === "cancel_rejected") text = `${ev.orig_cl_ord_id || ev.order_id}: ${ev.text}`;
    else if (ev.type === "kill_switch") text = ev.engaged ? `engaged: ${ev.reason}` : "released";
    else if (ev.type === "rfq") text = `${ev.rfq_id} ${ev.what}`;
    else if (ev.type === "drift_alert" || ev.type === "drift_fallback") text = ev.message || ev.reason;
    else if (o) text = `${o.side} ${qty(o.qty)} ${o.symbol}, ${o.status}`;
    state.activity.unshift({ ts: ev.ts_ns, type: ev.type, pid: ev.parent_id, text });
    state.activity.length = Math.min(state.activity.length, MAX_ACTIVITY);
  }

  // ---------------------------------------------------------------------- loading

  function fillsOf(pid) {
    if (!state.fills.has(pid)) state.fills.set(pid, new Map());
    return state.fills.get(pid);
  }

  async function loadFills(pid) {
    try {
      const data = await api("GET", `/api/orders/${encodeURIComponent(pid)}/fills`);
      const fills = fillsOf(pid);
      for (const f of data.fills) fills.set(f.exec_id, f);
      state.fillsLoaded.add(pid);
      renderSoon();
    } catch (_) {
      /* the order may be gone; the events still fill in */
    }
  }

  async function loadVenueMixes() {
    const pids = [...state.orders.keys()].slice(0, MAX_DETAIL_FILL_FETCH);
    for (const pid of pids) if (!state.fillsLoaded.has(pid)) await loadFills(pid);
  }

  async function loadSchedule(pid) {
    try {
      const data = await api("GET", `/api/orders/${encodeURIComponent(pid)}/schedule`);
      if (pid === state.selected) state.schedule = data;
      renderSoon();
    } catch (_) {
      /* keep the last one */
    }
  }

  async function loadTca(pid) {
    const view = state.orders.get(pid);
    if (!view || !["filled", "canceled", "expired"].includes(view.status)) return;
    try {
      const data = await api("GET", `/api/orders/${encodeURIComponent(pid)}/tca`);
      if (pid === state.selected) state.tca = data.tca;
      renderSoon();
    } catch (_) {
      /* not ready yet: order_completed will ask again */
    }
  }

  async function loadDetail(pid) {
    const [decisions] = await Promise.allSettled([
      api("GET", `/api/orders/${encodeURIComponent(pid)}/decisions?limit=10`),
      loadFills(pid),
      loadSchedule(pid),
      loadTca(pid),
    ]);
    if (pid === state.selected && decisions.status === "fulfilled") {
      mergeDecisions(decisions.value.decisions);
    }
    renderSoon();
  }

  // The HTTP answer merges with what the WebSocket told meanwhile: a decision recorded
  // after the server read its list but before the answer came would otherwise vanish
  // until the next reload.
  function mergeDecisions(fetched) {
    const byId = new Map(fetched.map((d) => [d.decision_id, d]));
    for (const d of state.decisions) if (!byId.has(d.decision_id)) byId.set(d.decision_id, d);
    state.decisions = [...byId.values()].sort((a, b) => b.ts_ns - a.ts_ns).slice(0, 10);
  }

  async function loadScorecard() {
    try {
      state.scorecard = (await api("GET", "/api/dealers/scorecard")).dealers || [];
      renderSoon();
    } catch (_) {
      /* shown as before */
    }
  }

  async function loadDrift() {
    try {
      state.drift = await api("GET", "/api/drift");
      renderSoon();
    } catch (_) {
      // shown as it was: the next look tries again
    }
  }

  async function loadShadow() {
    try {
      state.shadow = (await api("GET", "/api/models/shadow")).families || [];
      renderSoon();
    } catch (_) {
      /* shown as before */
    }
  }

  async function syncClock() {
    try {
      const before = Date.now();
      const info = await api("GET", "/api/info");
      const at = (before + Date.now()) / 2;
      const c = state.clock;
      if (c.ns && at - c.at > 500) {
        const rate = (info.now_ns - c.ns) / ((at - c.at) * NS_PER_MS);
        if (Number.isFinite(rate) && rate > 0) c.rate = rate;
      }
      c.ns = info.now_ns;
      c.at = at;
      return info;
    } catch (_) {
      return null;
    }
  }

  function select(pid) {
    if (state.selected === pid) return;
    state.selected = pid;
    state.decisions = [];
    state.schedule = null;
    state.tca = null;
    loadDetail(pid);
    renderSoon();
  }

  // ------------------------------------------------------------------------ render

  let frame = 0;
  function renderSoon() {
    if (!frame) frame = requestAnimationFrame(() => ((frame = 0), render()));
  }

  function render() {
    renderKill();
    renderOrders();
    renderDetail();
    renderScorecard();
    renderDrift();
    renderShadow();
    renderActivity();
  }

  function renderKill() {
    const box = $("kill");
    const on = !!state.kill.engaged;
    box.dataset.engaged = String(on);
    $("kill-state").textContent = on
      ? `KILL SWITCH ENGAGED${state.kill.reason ? ": " + state.kill.reason : ""}`
      : "kill switch off";
    $("kill-engage").hidden = on;
    $("kill-reason").hidden = on;
    $("kill-release").hidden = !on;
  }

  function venueMix(pid) {
    const total = { lit: 0, dark: 0, rfq: 0 };
    let sum = 0;
    for (const f of fillsOf(pid).values()) {
      if (f.venue_kind in total) total[f.venue_kind] += f.qty;
      sum += f.qty;
    }
    return { total, sum };
  }

  function mixBar(pid) {
    const { total, sum } = venueMix(pid);
    if (!sum) return el("span", { class: "muted" }, "–");
    const parts = KINDS.filter((k) => total[k] > 0);
    const title = parts.map((k) => `${k} ${pct(total[k] / sum)}`).join(", ");
    return el(
      "div",
      { title, "data-testid": "venue-mix" },
      el(
        "div",
        { class: "mix" },
        parts.map((k) => el("span", { class: `k-${k}`, style: `width:${(100 * total[k]) / sum}%` }))
      ),
      el("span", { class: "mix-legend" }, parts.map((k) => `${k} ${pct(total[k] / sum)}`).join(" · "))
    );
  }

  function actionButtons(o) {
    if (["filled", "canceled", "expired"].includes(o.status)) return [];
    const act = (what) => (e) => {
      e.stopPropagation();
      orderAction(o.parent_id, what);
    };
    const out = [];
    if (o.status === "working") {
      out.push(el("button", { class: "small", type: "button", "data-testid": "pause", onclick: act("pause") }, "Pause"));
    }
    if (o.status === "paused") {
      out.push(el("button", { class: "small", type: "button", "data-testid": "resume", onclick: act("resume") }, "Resume"));
    }
    if (o.status !== "pending_cancel") {
      out.push(
        el("button", { class: "small danger", type: "button", "data-testid": "cancel", onclick: act("cancel") }, "Cancel")
      );
    }
    return out;
  }

  function orderRow(o) {
    const frac = o.qty ? Math.min(1, o.filled_qty / o.qty) : 0;
    return el(
      "tr",
      {
        "data-testid": "order-row",
        "data-parent-id": o.parent_id,
        "data-status": o.status,
        class: o.parent_id === state.selected ? "selected" : "",
        onclick: () => select(o.parent_id),
      },
      el("td", {}, el("span", { class: "id" }, o.parent_id), el("span", { class: "sub", title: `client ${o.client}, ClOrdID ${o.cl_ord_id}` }, `${o.client} · ${o.cl_ord_id}`)),
      el("td", {}, el("span", { class: `side-${o.side}` }, o.side), " ", o.symbol),
      el("td", {}, o.strategy),
      el("td", {}, el("span", { class: `badge ${o.status}`, "data-testid": "order-status" }, o.status.replace("_", " "))),
      el(
        "td",
        { class: "num", "data-testid": "order-filled" },
        `${qty(o.filled_qty)} / ${qty(o.qty)}`,
        el("div", { class: "progress" }, el("span", { style: `width:${100 * frac}%` }))
      ),
      el("td", { class: "num", "data-testid": "order-avg" }, o.filled_qty ? num(o.avg_price, 4) : "–"),
      el("td", {}, mixBar(o.parent_id)),
      el("td", { class: "num" }, clockText(o.start_ns)),
      el("td", { class: "actions" }, actionButtons(o))
    );
  }

  function renderOrders() {
    const orders = [...state.orders.values()].sort((a, b) => b.start_ns - a.start_ns);
    $("orders-body").replaceChildren(...orders.map(orderRow));
    $("orders-empty").hidden = orders.length > 0;
    const working = orders.filter((o) => ["working", "paused", "pending_cancel"].includes(o.status));
    $("orders-summary").textContent = orders.length
      ? `${working.length} working · ${orders.length} shown`
      : "";
  }

  function fact(label, value, testid) {
    return el("div", {}, el("dt", {}, label), el("dd", testid ? { "data-testid": testid } : {}, value));
  }

  function renderDetail() {
    const o = state.selected && state.orders.get(state.selected);
    $("detail").hidden = !o;
    if (!o) return;
    $("detail-id").textContent = `${o.parent_id} · ${o.side} ${qty(o.qty)} ${o.symbol}`;
    const badge = $("detail-status");
    badge.textContent = o.status.replace("_", " ");
    badge.className = `badge ${o.status}`;
    const sign = o.side === "buy" ? 1 : -1;
    const slip = o.filled_qty && o.arrival_mid ? (sign * (o.avg_price - o.arrival_mid) * 1e4) / o.arrival_mid : NaN;
    const terminal = ["filled", "canceled", "expired"].includes(o.status);
    const left = terminal ? NaN : (o.end_ns - serviceNow()) / 1e9;
    const facts = [
      fact("Filled", `${qty(o.filled_qty)} (${pct(o.qty ? o.filled_qty / o.qty : NaN)})`, "detail-filled"),
      fact("Avg price", o.filled_qty ? num(o.avg_price, 4) : "–"),
      fact("Arrival mid", num(o.arrival_mid, 4)),
      fact("Slippage vs arrival", Number.isFinite(slip) ? `${num(slip, 1)} bps` : "–"),
      fact("Strategy", o.strategy + (o.participation ? ` (${pct(o.participation)})` : "")),
      fact("Type", o.ord_type === "limit" ? `limit ${num(o.limit_price, 4)}` : "market"),
      fact("Horizon", duration((o.end_ns - o.start_ns) / 1e9)),
      fact(terminal ? "Ended" : "Time left", terminal ? clockText(o.updated_ns) : duration(left)),
      fact("Child orders", qty(o.n_children)),
    ];
    if (state.tca && Number.isFinite(state.tca.is_bps)) {
      facts.push(fact("IS (TCA)", `${num(state.tca.is_bps, 2)} bps`, "detail-is"));
    }
    if (o.text) facts.push(fact("Note", o.text));
    $("detail-facts").replaceChildren(...facts);
    renderChart(o);
    renderVenues(o);
    renderDecisions();
  }

  // the schedule-vs-realised chart: target (dashed) from /schedule, realised (solid
  // step) from the fills, fills as dots coloured by venue kind
  function renderChart(o) {
    const box = $("chart");
    const W = 640;
    const H = 260;
    const m = { l: 64, r: 16, t: 12, b: 36 };
    const t0 = o.start_ns;
    const t1 = Math.max(o.end_ns, t0 + 1e9);
    const xs = (ns) => m.l + ((ns - t0) / (t1 - t0)) * (W - m.l - m.r);
    const yMax = Math.max(o.qty, 1);
    const ys = (q) => H - m.b - (q / yMax) * (H - m.t - m.b);
    const g = [];

    const spanMin = (t1 - t0) / 60e9;
    const useMin = spanMin >= 2;
    const unit = useMin ? 60e9 : 1e9;
    for (const v of ticks(0, (t1 - t0) / unit, 6)) {
      const x = xs(t0 + v * unit);
      g.push(svg("line", { x1: x, x2: x, y1: m.t, y2: H - m.b, stroke: "#f0f4f8" }));
      g.push(svg("text", { x, y: H - m.b + 16, "text-anchor": "middle", "font-size": 11, fill: "#616e7c" }, num(v, v % 1 ? 1 : 0)));
    }
    for (const v of ticks(0, yMax, 5)) {
      const y = ys(v);
      g.push(svg("line", { x1: m.l, x2: W - m.r, y1: y, y2: y, stroke: "#e4e7eb" }));
      g.push(svg("text", { x: m.l - 6, y: y + 4, "text-anchor": "end", "font-size": 11, fill: "#616e7c" }, qty(v)));
    }
    g.push(
      svg("text", { x: (m.l + W - m.r) / 2, y: H - 4, "text-anchor": "middle", "font-size": 11, fill: "#616e7c" },
        `time since start (${useMin ? "min" : "s"})`)
    );
    g.push(svg("line", { x1: m.l, x2: W - m.r, y1: H - m.b, y2: H - m.b, stroke: "#9aa5b1" }));

    // target from the schedule (a straight line to the full quantity when there is none)
    const sched = state.schedule && state.schedule.parent_id === o.parent_id ? state.schedule.schedule : [];
    const target = sched.length
      ? sched.map((p) => [p.ts_ns, p.target_qty])
      : [[t0, 0], [t1, o.qty]];
    g.push(
      svg("polyline", {
        points: target.map(([t, q]) => `${xs(Math.min(t, t1))},${ys(q)}`).join(" "),
        fill: "none",
        stroke: "#616e7c",
        "stroke-width": 1.6,
        "stroke-dasharray": "5 4",
        "data-testid": "chart-target",
      })
    );

    // realised: a step through the fills, on to now while the order works
    const fills = [...fillsOf(o.parent_id).values()].sort((a, b) => a.ts_ns - b.ts_ns);
    const terminal = ["filled", "canceled", "expired"].includes(o.status);
    const end = terminal ? Math.min(o.updated_ns, t1) : Math.min(Math.max(serviceNow(), t0), t1);
    let cum = 0;
    const pts = [[t0, 0]];
    for (const f of fills) {
      pts.push([f.ts_ns, cum]);
      cum += f.qty;
      pts.push([f.ts_ns, cum]);
    }
    pts.push([Math.max(end, pts[pts.length - 1][0]), cum]);
    g.push(
      svg("polyline", {
        points: pts.map(([t, q]) => `${xs(Math.min(t, t1))},${ys(q)}`).join(" "),
        fill: "none",
        stroke: "#0072B2",
        "stroke-width": 2.2,
        "data-testid": "chart-realised",
      })
    );
    cum = 0;
    for (const f of fills) {
      cum += f.qty;
      g.push(
        svg("circle", { cx: xs(Math.min(f.ts_ns, t1)), cy: ys(cum), r: 3.2, fill: KIND_COLORS[f.venue_kind] || "#1f2933" },
          svg("title", {}, `${f.venue} (${f.venue_kind}): ${qty(f.qty)} @ ${num(f.price, 4)}`))
      );
    }
    if (!terminal) {
      const x = xs(end);
      g.push(svg("line", { x1: x, x2: x, y1: m.t, y2: H - m.b, stroke: "#CC79A7", "stroke-dasharray": "2 3" }));
    }
    const chart = svg("svg", { viewBox: `0 0 ${W} ${H}`, role: "img", "aria-label": "schedule vs realised" }, g);
    const legend = el(
      "div",
      { class: "legend" },
      el("span", {}, el("span", { class: "swatch", style: "border-color:#0072B2" }), "filled"),
      el("span", {}, el("span", { class: "swatch dashed", style: "border-color:#616e7c" }), "target"),
      KINDS.map((k) => el("span", {}, el("span", { class: "swatch dot", style: `background:${KIND_COLORS[k]}` }), `${k} fill`)),
      terminal ? null : el("span", {}, el("span", { class: "swatch dashed", style: "border-color:#CC79A7" }), "now")
    );
    box.replaceChildren(chart, legend);
  }

  function renderVenues(o) {
    const byVenue = new Map();
    let total = 0;
    for (const f of fillsOf(o.parent_id).values()) {
      const v = byVenue.get(f.venue) || { venue: f.venue, kind: f.venue_kind, n: 0, qty: 0, notional: 0 };
      v.n += 1;
      v.qty += f.qty;
      v.notional += f.qty * f.price;
      byVenue.set(f.venue, v);
      total += f.qty;
    }
    const rows = [...byVenue.values()]
      .sort((a, b) => b.qty - a.qty)
      .map((v) =>
        el(
          "tr",
          { "data-testid": "venue-row", "data-venue": v.venue },
          el("td", {}, v.venue),
          el("td", {}, v.kind),
          el("td", { class: "num" }, qty(v.n)),
          el("td", { class: "num" }, qty(v.qty)),
          el(
            "td",
            { title: pct(v.qty / total, 1) },
            el("div", { class: "sharebar" }, el("span", { style: `width:${(100 * v.qty) / total}%;background:${KIND_COLORS[v.kind] || "#9aa5b1"}` }))
          ),
          el("td", { class: "num" }, num(v.notional / v.qty, 4))
        )
      );
    $("venues-body").replaceChildren(...rows);
    $("venues-empty").hidden = rows.length > 0;
  }

  // `chosen` may be a venue ("LIT-A") or a phrase naming it ("take 2000 on LITB"), and
  // an alternative a venue or a venue-prefixed key ("LITB_cost_ticks")
  function isChosen(alternative, chosen) {
    if (alternative === chosen) return true;
    const venue = alternative.split("_")[0];
    return venue.length > 1 && String(chosen).split(/[\s,;:()]+/).includes(venue);
  }

  // the first `n` items, and the rest behind a "+N more" disclosure
  function firstAndMore(items, n) {
    if (items.length <= n) return items;
    return [...items.slice(0, n), el("details", { class: "more" }, el("summary", {}, `+${items.length - n} more`), items.slice(n))];
  }

  function renderDecisions() {
    const rows = state.decisions.slice(0, 8).map((d) => {
      const alts = Object.entries(d.alternatives || {}).sort((a, b) => a[1] - b[1]);
      const inputs = Object.entries(d.inputs || {});
      // shadow mode: the families whose challenger would have acted otherwise here
      const differs = Object.entries(d.shadow || {})
        .filter(([, a]) => !a.agree)
        .map(([family, a]) => `${family}: ${answerText(family, a.challenger)}`);
      return el(
        "tr",
        { "data-testid": "decision-row" },
        el("td", {}, clockText(d.ts_ns)),
        el(
          "td",
          {},
          el("strong", {}, d.chosen),
          d.fallback ? el("span", { class: "badge warn", title: d.fallback, "data-testid": "decision-fallback" }, "heuristic fallback") : null,
          differs.length ? el("div", { class: "shadow-flag", "data-testid": "decision-shadow" }, `challenger differs (${differs.join("; ")})`) : null
        ),
        el(
          "td",
          {},
          firstAndMore(
            alts.map(([name, score]) =>
              el("span", { class: isChosen(name, d.chosen) ? "alt chosen" : "alt" }, name, " ", el("span", { class: "score" }, num(score, 2)))
            ),
            4
          )
        ),
        el(
          "td",
          {},
          firstAndMore(
            inputs.map(([k, v]) => el("span", { class: "inp" }, el("span", { class: "k" }, `${k} `), num(v, Math.abs(v) >= 100 ? 0 : 3))),
            6
          )
        )
      );
    });
    $("decisions-body").replaceChildren(...rows);
    $("decisions-empty").hidden = rows.length > 0;
  }

  function renderScorecard() {
    const rows = state.scorecard.map((d) =>
      el(
        "tr",
        { "data-testid": "dealer-row" },
        el("td", {}, d.dealer),
        el("td", { class: "num" }, qty(d.rfqs)),
        el("td", { class: "num" }, pct(d.response_rate)),
        el("td", { class: "num" }, pct(d.hit_ratio)),
        el("td", { class: "num" }, pct(d.cover_rate)),
        el("td", { class: "num" }, num(d.avg_response_ms, 0)),
        el("td", { class: "num" }, num(d.price_improvement_bps, 2)),
        el("td", { class: "num" }, num(d.markout_bps, 2))
      )
    );
    $("scorecard-body").replaceChildren(...rows);
    $("scorecard-empty").hidden = rows.length > 0;
  }

  function renderDrift() {
    const d = state.drift;
    if (!d) return;
    const fb = d.fallback || {};
    const alerts = d.alerts || [];
    const badge = $("drift-state");
    badge.textContent = !d.enabled ? "off" : fb.engaged ? "models withdrawn" : alerts.length ? `${alerts.length} alert(s)` : "ok";
    badge.dataset.state = !d.enabled ? "off" : fb.engaged ? "fallback" : alerts.length ? "alert" : "ok";
    $("drift-fallback").hidden = !fb.engaged;
    $("drift-fallback").textContent = fb.engaged ? `ml decisions run on the heuristic router: ${fb.reason}` : "";
    $("drift-resume").hidden = !fb.engaged || !state.tokenConfigured;
    const rows = Object.entries(d.models || {}).map(([family, m]) => {
      const cal = Object.entries(m.calibration || {}).map(([model, c]) =>
        el("span", { class: "inp" }, el("span", { class: "k" }, `${model} `), c.ece === null ? "–" : `${num(c.ece, 3)} (n ${qty(c.n)})`)
      );
      return el(
        "tr",
        { "data-testid": "drift-row", "data-family": family },
        el("td", {}, family),
        el("td", { class: "num" }, qty(m.rows)),
        el("td", {}, m.worst_feature ? `${m.worst_feature} ${pct(m.worst_share, 1)}` : "none"),
        el("td", {}, cal)
      );
    });
    $("drift-body").replaceChildren(...rows);
    const is = d.is_vs_estimate || {};
    $("drift-is").textContent = is.parents
      ? `IS − pre-trade estimate: ${num(is.mean_diff_bps, 2)} bps over ${is.parents} parents (z ${num(is.z, 2)})`
      : "IS − pre-trade estimate: no model-guided parent has ended yet";
    $("drift-alerts").replaceChildren(
      ...alerts.map((a) => el("li", { class: "alert", "data-testid": "drift-alert", "data-figure": `${a.family}/${a.figure}` }, a.message))
    );
  }

  async function resumeModels() {
    try {
      state.drift = await api("POST", "/api/drift/resume", { by: "dashboard", reason: "resumed from the dashboard" });
      flash("models served again");
      render();
    } catch (err) {
      flash(`resume: ${explain(err)}`, true);
    }
  }

  // a family's answer in a few words: the panel it asks, the split it sends, the pace
  function answerText(family, a) {
    if (!a) return "–";
    if (family === "dealer") return `ask ${(a.panel || []).join(", ")} (P any quote ${pct(a.p_any_quote)})`;
    if (family === "fill") {
      const posts = Object.entries(a.post || {}).map(([where, q]) => `post ${qty(q)} ${where}`);
      return [`take ${qty(a.take)}`, ...posts].join(", ");
    }
    if (family === "slicer") return `pace ×${num(a.pace, 2)} (action ${num(a.action, 3)})`;
    return JSON.stringify(a);
  }

  function renderShadow() {
    const families = state.shadow.filter((f) => f.shadowing || f.decisions > 0);
    $("shadow").hidden = families.length === 0;
    const rows = families.map((f) =>
      el(
        "tr",
        { "data-testid": "shadow-row", "data-family": f.family },
        el("td", {}, f.family),
        el("td", { class: "num" }, f.champion_version == null ? "–" : `v${f.champion_version}`),
        el("td", { class: "num" }, f.challenger_version == null ? "none" : `v${f.challenger_version}`),
        el("td", { class: "num" }, qty(f.decisions)),
        el("td", { class: "num", "data-testid": "shadow-agreement" }, pct(f.agreement_rate, 1)),
        el("td", { class: "num" }, `${num(f.latency_p50_us, 0)} / ${num(f.latency_p99_us, 0)}`)
      )
    );
    $("shadow-body").replaceChildren(...rows);
    const diffs = families
      .flatMap((f) => (f.disagreements || []).map((d) => ({ ...d, family: f.family })))
      .sort((a, b) => b.ts_ns - a.ts_ns)
      .slice(0, 10)
      .map((d) =>
        el(
          "tr",
          { "data-testid": "shadow-disagreement", "data-family": d.family },
          el("td", {}, clockText(d.ts_ns)),
          el("td", {}, d.family),
          el("td", {}, d.parent_id),
          el("td", {}, answerText(d.family, d.champion)),
          el("td", {}, el("strong", {}, answerText(d.family, d.challenger))),
          el(
            "td",
            {},
            firstAndMore(
              Object.entries(d.diffs || {}).map(([k, [a, b]]) =>
                el("span", { class: "inp" }, el("span", { class: "k" }, `${k} `), `${num(a, 3)} → ${num(b, 3)}`)
              ),
              3
            )
          )
        )
      );
    $("shadow-diffs-body").replaceChildren(...diffs);
    $("shadow-diffs-empty").hidden = diffs.length > 0;
  }

  function renderActivity() {
    $("activity").replaceChildren(
      ...state.activity.map((a) =>
        el(
          "li",
          {},
          el("span", { class: "t" }, clockText(a.ts)),
          el("span", { class: "what" }, a.type.replaceAll("_", " ")),
          el("span", { class: "txt", title: a.text }, [a.pid, a.text].filter(Boolean).join(" · "))
        )
      )
    );
  }

  function tickClock() {
    $("clock").textContent = clockText(serviceNow());
  }

  // ------------------------------------------------------------------------ actions

  async function orderAction(pid, what) {
    try {
      await api("POST", `/api/orders/${encodeURIComponent(pid)}/${what}`, what === "cancel" ? { reason: "canceled from the dashboard" } : undefined);
      flash(`${pid}: ${what} sent`);
    } catch (err) {
      flash(`${pid}: ${what} refused: ${explain(err)}`, true);
    }
  }

  function clearFieldErrors() {
    for (const node of document.querySelectorAll("[aria-invalid]")) node.removeAttribute("aria-invalid");
    $("form-error").textContent = "";
  }

  async function submitOrder(e) {
    e.preventDefault();
    clearFieldErrors();
    const f = e.target;
    const body = { symbol: f.symbol.value.trim(), side: f.side.value, strategy: f.strategy.value };
    const q = f.qty.value.replaceAll(",", "").replaceAll("_", "").trim();
    body.qty = /^\d+$/.test(q) ? Number(q) : q;
    const horizon = f.horizon_s.value.trim();
    if (horizon) body.horizon_s = /^\d+(\.\d+)?$/.test(horizon) ? Number(horizon) : horizon;
    const limit = f.limit_price.value.trim();
    if (limit) {
      body.ord_type = "limit";
      body.limit_price = Number.isFinite(Number(limit)) ? Number(limit) : limit;
    }
    $("submit-order").disabled = true;
    try {
      const view = await api("POST", "/api/orders", body);
      upsertOrder(view);
      select(view.parent_id);
      flash(`${view.parent_id} accepted: ${view.side} ${qty(view.qty)} ${view.symbol} (${view.strategy})`);
    } catch (err) {
      $("form-error").textContent = explain(err);
      const input = err.field && f.elements[err.field];
      if (input) {
        input.setAttribute("aria-invalid", "true");
        input.focus();
      } else if (err.status === 401 || err.status === 403) {
        f.token.setAttribute("aria-invalid", "true");
      }
    } finally {
      $("submit-order").disabled = false;
    }
  }

  async function engageKill() {
    const reason = $("kill-reason").value.trim() || "engaged from the dashboard";
    try {
      const r = await api("POST", "/api/kill-switch", { reason });
      state.kill = r;
      flash(`kill switch engaged: ${r.canceled_parents} order(s) canceled`, true);
      render();
    } catch (err) {
      flash(`kill switch: ${explain(err)}`, true);
    }
  }

  async function releaseKill() {
    try {
      state.kill = await api("DELETE", "/api/kill-switch");
      flash("kill switch released");
      render();
    } catch (err) {
      flash(`kill switch: ${explain(err)}`, true);
    }
  }

  // -------------------------------------------------------------------------- start

  async function start() {
    const tok = $("f-token");
    tok.value = sessionStorage.getItem(TOKEN_KEY) || "";
    tok.addEventListener("input", () => sessionStorage.setItem(TOKEN_KEY, tok.value));
    $("order-form").addEventListener("submit", submitOrder);
    $("kill-engage").addEventListener("click", engageKill);
    $("kill-release").addEventListener("click", releaseKill);
    $("drift-resume").addEventListener("click", resumeModels);

    const info = await syncClock();
    if (info) {
      $("symbols").replaceChildren(...info.symbols.map((s) => el("option", { value: s })));
      if (info.symbols.length && !info.symbols.includes($("f-symbol").value)) $("f-symbol").value = info.symbols[0];
      $("f-strategy").replaceChildren(
        ...info.strategies.map((s) => el("option", { value: s, selected: s === info.default_strategy }, s))
      );
      state.tokenConfigured = info.token_configured;
      $("no-token").hidden = info.token_configured;
    }
    connect();
    loadScorecard();
    loadDrift();
    loadShadow();
    setInterval(loadScorecard, 30000);
    setInterval(loadDrift, 10000);
    setInterval(loadShadow, 5000);
    setInterval(syncClock, 5000);
    setInterval(() => {
      tickClock();
      const o = state.selected && state.orders.get(state.selected);
      if (o && !["filled", "canceled", "expired"].includes(o.status)) renderSoon(); // time left, now line
    }, 1000);
    render();
  }

  window.blockrouteDashboard = { state }; // for debugging from the console
  document.addEventListener("DOMContentLoaded", start);
})();
