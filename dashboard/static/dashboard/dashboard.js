/* The organizer's dashboard: draws the snapshot, re-reads it when the organizers' WebSocket group
 * says something moved (a push is only a hint; the JSON is the truth), and runs the buttons.
 * No framework: a few DOM helpers, textContent for anything that came from data. */
(function () {
  "use strict";
  const config = JSON.parse(document.getElementById("mm-config").textContent);
  const root = document.getElementById("mm-dashboard");
  const nf = new Intl.NumberFormat("en-US");
  const tz = config.timezone || "UTC";
  const dtf = new Intl.DateTimeFormat("en-GB", { timeZone: tz, day: "numeric", month: "short", hour: "2-digit", minute: "2-digit" });
  const tf = new Intl.DateTimeFormat("en-GB", { timeZone: tz, hour: "2-digit", minute: "2-digit", second: "2-digit" });
  const MIN_REFRESH_MS = 1000;
  const POLL_WHEN_OFFLINE_MS = 30000;

  const fmt = (n) => (n === null || n === undefined ? "–" : nf.format(n));
  const when = (iso) => (iso ? dtf.format(new Date(iso)) : "–");
  const pct = (x) => (x === null || x === undefined ? "–" : (100 * x).toFixed(x < 0.1 ? 1 : 0) + "%");

  function set(name, text) {
    root.querySelectorAll('[data-f="' + name + '"]').forEach((el) => { el.textContent = text; });
  }
  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    Object.entries(attrs || {}).forEach(([k, v]) => {
      if (k === "style") node.setAttribute("style", v); else if (k === "class") node.className = v; else node.setAttribute(k, v);
    });
    children.flat().forEach((c) => node.append(c instanceof Node ? c : document.createTextNode(String(c))));
    return node;
  }
  function replace(id, ...nodes) { const box = document.getElementById(id); box.replaceChildren(...nodes); }
  function bar(fraction, cls) {
    return el("div", { class: "mm-progress " + (cls || "") }, el("div", { style: "width:" + Math.round(100 * Math.min(1, fraction || 0)) + "%" }));
  }
  function table(head, rows, empty, numeric) {
    if (!rows.length) return [el("caption", { class: "mm-empty" }, empty)];
    const th = (h, i) => el("th", (numeric || []).includes(i) ? { class: "mm-num" } : {}, h);
    return [el("thead", {}, el("tr", {}, head.map(th))), el("tbody", {}, rows)];
  }

  function render(s) {
    const e = s.engagement, r = s.readiness, ev = s.event;
    set("window", ev.live_starts_at ? "live " + when(ev.live_starts_at) + " – " + when(ev.live_ends_at) + " (" + tz + ")" : "no live window set");
    set("phase_label", r.phase_label);
    root.querySelector(".mm-phase").dataset.phase = r.phase;
    set("updated", tf.format(new Date(s.generated_at)));
    set("total", fmt(e.total));
    set("qualifying", fmt(e.qualifying));
    set("not_qualifying", fmt(e.not_qualifying));
    set("per_minute_now", fmt(e.per_minute_now));
    set("active_now", fmt(e.active_now));
    set("attendees", fmt(ev.attendees));
    set("serving_label", r.serving.label);
    set("serving_label2", r.serving.label);
    set("serving_note", r.serving.fallback ? "fallback: " + r.serving.fallback : "as planned for this phase");
    set("serving_chain", "(order for this phase: " + r.serving.chain.join(" → ") + ")");
    set("bucket", e.chart.bucket_minutes ? "· " + e.chart.bucket_minutes + "-min buckets" : "");
    document.getElementById("mm-chart").innerHTML = e.chart_svg; // server-rendered, escaped there

    const maxOcc = Math.max(1, ...e.occupancy.map((o) => o.people));
    replace("mm-occupancy", ...(e.occupancy.length ? e.occupancy.map((o) =>
      el("li", {}, el("span", { class: "mm-bar-label" }, o.room), el("span", { class: "mm-bar-track" }, el("span", { class: "mm-bar-fill", style: "width:" + (100 * o.people / maxOcc) + "%" })), el("b", {}, fmt(o.people)))
    ) : [el("li", { class: "mm-empty" }, "Nobody is in a room right now.")]));

    set("qualifying_of", fmt(r.qualifying) + " / " + fmt(r.threshold));
    root.querySelector('[data-f="qualifying_bar"]').style.width = (100 * r.qualifying_progress) + "%";
    set("contexts_of", fmt(r.active_contexts) + " / " + fmt(r.min_active_contexts));
    root.querySelector('[data-f="contexts_bar"]').style.width = (100 * r.contexts_progress) + "%";
    set("phase_label2", r.phase_label);
    set("phase_since", r.phase_changed_at ? "since " + when(r.phase_changed_at) : "since the event was created");
    set("phase_cause", r.phase_cause);
    set("batch", r.batch_lists ? fmt(r.batch_lists) + " lists, computed " + when(r.batch_computed_at) : "not computed yet");

    const dwellRows = (items) => items.map((i, n) => el("tr", {}, el("td", { class: "mm-rank" }, n + 1), el("td", {}, i.name), el("td", { class: "mm-num" }, fmt(i.dwell_minutes) + " min"), el("td", { class: "mm-num mm-muted" }, fmt(i.people) + " people")));
    replace("mm-top-rooms", ...table(["#", "Room", "Dwell", "Reach"], dwellRows(e.top_rooms), "No room visits yet.", [2, 3]));
    replace("mm-top-content", ...table(["#", "Content", "Dwell", "Reach"], dwellRows(e.top_content), "No content viewed yet.", [2, 3]));

    renderFunnel(s.funnel);
    renderMeetings(s.meetings);
    renderExposure(s.exposure);
    renderModels(s.models);
    renderRuns(s.runs);
  }

  function renderFunnel(f) {
    if (!f.by_source.length) { replace("mm-funnel", el("p", { class: "mm-empty" }, "No suggestions shown yet.")); return; }
    const labels = { shown: "Shown", opened: "Opened", requested: "Requested", accepted: "Accepted",
      booked: "Meeting booked", held: "Meeting held" };
    const rows = [...f.by_source, { label: "All sources", ...f.total, total: true }];
    const blocks = rows.map((row) => {
      const top = Math.max(1, row.shown);
      return el("div", { class: "mm-funnel" + (row.total ? " mm-funnel-total" : "") },
        el("div", { class: "mm-funnel-source" }, row.label),
        el("div", { class: "mm-funnel-steps" }, f.stages.map((st, i) => el("div", { class: "mm-funnel-step" },
          el("span", { class: "mm-funnel-bar", style: "width:" + Math.max(2, 100 * row[st] / top) + "%" }),
          el("span", { class: "mm-funnel-text" }, labels[st] + " " + fmt(row[st]) + (i ? " · " + pct(row[f.stages[i - 1]] ? row[st] / row[f.stages[i - 1]] : null) + " of " + labels[f.stages[i - 1]].toLowerCase() : ""))))));
    });
    replace("mm-funnel", ...blocks);
  }

  function renderMeetings(m) {
    if (!m || !m.booked) { replace("mm-meetings", el("p", { class: "mm-empty" }, "No meeting booked yet.")); return; }
    const rows = m.per_hour.map((h) => el("tr", {},
      el("td", {}, h.hour.slice(11, 16)), el("td", { class: "mm-num" }, fmt(h.booked)), el("td", { class: "mm-num" }, fmt(h.held))));
    replace("mm-meetings",
      el("p", { class: "mm-stat", "data-mm-meetings-summary": "" }, fmt(m.booked) + " booked · " + fmt(m.held) +
        " held (both checked in) · " + pct(m.share_with_meeting) + " of attendees have one (" +
        fmt(m.attendees_with_meeting) + ")"),
      el("table", { class: "mm-table" }, ...table(["Hour (event time)", "Booked", "Held"], rows, "", [1, 2])));
  }

  function renderExposure(x) {
    if (!x.shown) { replace("mm-exposure", el("p", { class: "mm-empty" }, "No suggestions shown yet.")); return; }
    const ratio = x.top_share / x.even_share;
    const verdict = ratio <= 3 ? ["good", "evenly spread"] : ratio <= 8 ? ["warn", "somewhat concentrated"] : ["bad", "concentrated on a few people"];
    replace("mm-exposure",
      el("div", { class: "mm-big " + "mm-" + verdict[0] }, pct(x.top_share)),
      el("p", {}, "of the " + fmt(x.shown) + " suggestions shown went to the most-suggested 1% of attendees (" + fmt(x.top_n) + " of " + fmt(x.attendees) + "). Perfectly even would be 1%: ", el("b", {}, verdict[1]), "."),
      el("p", { class: "mm-muted" }, fmt(x.distinct_suggested) + " different attendees have been suggested at least once."),
      x.advice ? el("p", { class: "mm-advice" }, x.advice + " ", el("a", { href: config.settings_url + "#id_exposure_cap_share" }, "Open the event's settings")) : "");
  }

  function bytes(n) { if (!n) return "–"; const u = ["B", "KB", "MB", "GB"]; let i = 0; while (n >= 1024 && i < u.length - 1) { n /= 1024; i++; } return n.toFixed(i ? 1 : 0) + " " + u[i]; }
  function renderModels(models) {
    const serving = models.find((m) => m.published);
    const rows = models.map((m) => {
      const metrics = m.metrics.map((x) => el("div", {}, x.name.replace(/_at_/, "@").replace(/_/g, " ") + " ", el("b", {}, x.value), x.reference ? el("span", { class: "mm-muted" }, " vs " + x.reference.label + " " + x.reference.value) : ""));
      return el("tr", {},
        el("td", {}, el("b", {}, "v" + m.number), el("div", { class: "mm-muted" }, m.backend),
          m.ranker ? el("div", { class: "mm-ranker", title: m.ranker.reason }, el("b", {}, m.ranker.name), " (" + m.ranker.kind + ")", m.ranker.weights ? el("div", { class: "mm-muted" }, m.ranker.weights) : "") : ""),
        el("td", {}, when(m.created_at)),
        el("td", { class: "mm-num" }, m.training_seconds + " s"),
        el("td", { class: "mm-num" }, bytes(m.artifact_bytes)),
        el("td", { class: "mm-metrics" }, metrics.length ? metrics : "–"),
        el("td", {}, el("span", { class: "mm-pill mm-pill-" + m.status }, m.status_label), m.not_published_reason ? el("div", { class: "mm-muted" }, m.not_published_reason) : "",
          m.publishable && config.can_change ? publishButton(m, serving) : ""));
    });
    replace("mm-models", ...table(["Version", "Trained", "Took", "Size", "Offline metrics", "Published"], rows, "No model trained yet: suggestions come from the rules engine.", [2, 3]));
  }

  // Publish a kept version, or roll back to an earlier one: confirmed, then the server says how it went.
  function publishButton(m, serving) {
    const back = serving && m.number < serving.number;
    const label = back ? "Roll back to v" + m.number : "Publish v" + m.number;
    const btn = el("button", { type: "button", class: "mm-btn mm-btn-small", "data-publish": m.number }, label);
    const now = serving ? " in place of v" + serving.number : "";
    const question = label + "? Every attendee's list comes from v" + m.number + now + " from the next read on.";
    btn.addEventListener("click", () => confirmedPost(btn, label, question, config.publish_url.replace("{number}", m.number)));
    return btn;
  }

  function renderRuns(runs) {
    if (!runs.length) { replace("mm-runs", el("p", { class: "mm-empty" }, "No runs yet.")); return; }
    replace("mm-runs", ...runs.map((r) => el("div", { class: "mm-run" + (r.active ? " mm-run-active" : "") },
      el("div", { class: "mm-run-head" }, el("b", {}, r.kind_label + " #" + r.id), el("span", { class: "mm-pill mm-pill-" + r.status }, r.status_label), el("span", { class: "mm-muted" }, when(r.created_at) + " · " + r.trigger)),
      r.active ? bar(r.progress, "mm-progress-run") : "",
      r.steps.length ? el("ol", { class: "mm-steps" }, r.steps.map((st) => el("li", { class: "mm-step-" + st.status }, st.name))) : "",
      r.message ? el("div", { class: "mm-run-msg" }, r.message) : "")));
  }

  // --- Refresh: at most one request in flight, at most one per MIN_REFRESH_MS -------------------
  // A slow snapshot (a very large event) spaces the refreshes out: never more than a third of
  // the time is spent waiting for it.
  let inFlight = false, again = false, lastAt = 0, lastTook = 0, timer = null;
  async function refresh() {
    if (inFlight) { again = true; return; }
    inFlight = true; lastAt = Date.now();
    try {
      const res = await fetch(config.snapshot_url, { credentials: "same-origin", headers: { Accept: "application/json" } });
      if (res.ok) {
        const snapshot = await res.json();
        render(snapshot);
        renderedSeq = snapshot.seq;
        // Served from before the last push we heard of (a shared, cached snapshot): ask again.
        if (lastSeq !== null && snapshot.seq < lastSeq) again = true;
      }
    } catch (err) { /* the next push or poll tries again */ }
    lastTook = Date.now() - lastAt;
    inFlight = false;
    if (again) { again = false; schedule(); }
  }
  function schedule() {
    if (timer) return;
    const wait = Math.max(0, Math.max(MIN_REFRESH_MS, 3 * lastTook) - (Date.now() - lastAt));
    timer = setTimeout(() => { timer = null; refresh(); }, wait);
  }

  // --- Live updates over the organizers' group ---------------------------------------------------
  const live = document.getElementById("mm-live");
  let lastSeq = null, renderedSeq = null, backoff = 1000, poller = null;
  function status(state, text) { live.dataset.state = state; set("live_text", text); }
  function connect() {
    const ws = new WebSocket((location.protocol === "https:" ? "wss://" : "ws://") + location.host + config.ws_path);
    ws.onopen = () => { backoff = 1000; status("live", "Live"); if (poller) { clearInterval(poller); poller = null; } };
    ws.onmessage = (msg) => {
      const data = JSON.parse(msg.data);
      // The hello says the number of the last push: re-read only if the page shows an older one
      // (a reconnect after a quiet spell costs nothing).
      if (data.type === "hello") { if (renderedSeq === null || !(data.seq <= renderedSeq)) schedule(); return; }
      if (data.type !== "engagement.update") return;
      lastSeq = data.seq;
      if (renderedSeq === null || data.seq > renderedSeq) schedule();
    };
    ws.onclose = (e) => {
      if (e.code >= 4400 && e.code < 4500) { status("off", "No live updates (no access)"); return; }
      status("off", "Reconnecting…");
      if (!poller) poller = setInterval(schedule, POLL_WHEN_OFFLINE_MS);
      setTimeout(connect, backoff);
      backoff = Math.min(backoff * 2, 30000);
    };
  }

  // --- Buttons ----------------------------------------------------------------------------------
  const outcome = document.getElementById("mm-outcome");
  function report(ok, text) { outcome.className = "mm-outcome " + (ok ? "mm-ok" : "mm-err"); outcome.textContent = text; }
  // A long action (a retrain takes seconds): the button is busy and the outcome line counts the time.
  let ticker = null;
  function busy(btn, label) {
    btn.disabled = true; btn.setAttribute("aria-busy", "true"); btn.classList.add("mm-busy");
    const started = Date.now();
    const tick = () => { outcome.className = "mm-outcome mm-working"; outcome.textContent = label + "… " + Math.round((Date.now() - started) / 1000) + " s"; };
    tick(); clearInterval(ticker); ticker = setInterval(tick, 1000);
  }
  function idle(btn) { clearInterval(ticker); ticker = null; btn.disabled = false; btn.removeAttribute("aria-busy"); btn.classList.remove("mm-busy"); }
  // Asked first; then busy while the server works, and its JSON answer ({ok, message}) said in the page.
  async function confirmedPost(btn, label, question, url) {
    if (!window.confirm(question)) { report(true, "Cancelled."); return; }
    busy(btn, label);
    try {
      const res = await fetch(url, { method: "POST", credentials: "same-origin", headers: { "X-CSRFToken": csrf(), Accept: "application/json" } });
      const body = await res.json().catch(() => ({ ok: false, message: "HTTP " + res.status }));
      idle(btn);
      report(res.ok && body.ok, body.message);
    } catch (err) { idle(btn); report(false, "Could not reach the server: " + err); }
    schedule();
  }
  const csrf = () => document.querySelector("input[name=csrfmiddlewaretoken]").value;
  root.querySelectorAll("[data-action]").forEach((btn) => {
    if (!config.can_change) { btn.disabled = true; btn.title = "You may view this event, not change it."; }
    btn.addEventListener("click", () => confirmedPost(btn, btn.textContent, btn.dataset.confirm, config.actions[btn.dataset.action]));
  });
  root.querySelectorAll("[data-export]").forEach((btn) => btn.addEventListener("click", () => {
    if (!window.confirm(btn.dataset.confirm)) { report(true, "Cancelled."); return; }
    window.location.href = config.exports[btn.dataset.export];
    report(true, "Export of " + btn.dataset.export + " started: the CSV downloads in the background.");
  }));

  const initial = JSON.parse(document.getElementById("mm-initial").textContent);
  render(initial);
  renderedSeq = initial.seq === undefined ? null : initial.seq;
  connect();
})();
