// The incident board, live: the incident's events over SSE (the browser resumes a dropped
// stream with Last-Event-ID and the server sends a fresh snapshot on every connection), the
// requirement rows rendered at most four times a second however fast events come — a
// 10,000-callout fan-out must not freeze the page — and the details (tiers, teams, delivery,
// timeline, responders) fetched again at most every three seconds while events arrive. The
// countdowns to the next tier tick every second. No inline script: the CSP forbids it.
(function () {
  "use strict";
  var board = document.querySelector("[data-events]");
  if (!board) return;
  var live = document.getElementById("live");
  var details = document.getElementById("details");
  var STATUS_KEYS = ["mustering", "filled", "short", "stood_down", "closed"];
  var TIER_KEYS = ["township", "county", "city"];
  function words(keys, attr) {
    var out = {}, list = (board.dataset[attr] || "").split("|");
    keys.forEach(function (k, i) { out[k] = list[i] || k; });
    return out;
  }
  var STATUS = words(STATUS_KEYS, "statuses"), TIER = words(TIER_KEYS, "tiers");

  // Countdowns to the next tier: m:ss from each <time datetime>.
  function tick() {
    var now = Date.now();
    board.querySelectorAll('time[data-f="next"]').forEach(function (t) {
      var at = Date.parse(t.getAttribute("datetime") || "");
      if (isNaN(at)) { if (t.textContent !== "—") t.textContent = "—"; return; }
      var left = Math.floor((at - now) / 1000);
      var text = left < 0 ? board.dataset.passed :
        Math.floor(left / 60) + ":" + String(left % 60).padStart(2, "0");
      if (t.textContent !== text) t.textContent = text;
    });
  }
  tick();
  setInterval(tick, 1000);

  if (!window.EventSource) return;
  var latest = null, timer = null, dirty = false, fetching = false, lastFetch = 0;
  function show(state, text) { live.dataset.state = state; live.textContent = text; }
  function set(row, field, value) {
    var cell = row.querySelector('[data-f="' + field + '"]');
    if (cell && cell.textContent !== String(value)) cell.textContent = value;
  }
  function render() {
    timer = null;
    var v = latest;
    if (!v || !v.requirements) return;
    v.requirements.forEach(function (r) {
      var row = board.querySelector('tr[data-req="' + CSS.escape(r.id) + '"]');
      if (!row) return;
      set(row, "accepted", r.accepted + "/" + r.needed);
      set(row, "arrived", r.arrived);
      set(row, "standby", r.standby);
      set(row, "waiting", r.pending + r.notified);
      set(row, "declined", r.declined);
      set(row, "silent", r.silent);
      set(row, "step", (r.step + 1) + " · " + (TIER[r.tier] || r.tier));
      var next = row.querySelector('time[data-f="next"]');
      if (next && next.getAttribute("datetime") !== (r.next_step_at || "")) {
        next.setAttribute("datetime", r.next_step_at || "");
      }
      var bar = row.querySelector("progress");
      if (bar) { bar.max = r.needed; bar.value = r.accepted; bar.textContent = r.accepted + "/" + r.needed; }
      row.classList.toggle("short", !!r.short);
    });
    var status = board.querySelector('[data-f="status"]');
    if (status && v.status) status.textContent = STATUS[v.status] || v.status;
    tick();
  }
  // The details, again: one request at a time, at most every three seconds, none while the
  // tab is hidden (it catches up when shown).
  function refresh() {
    if (!details || !dirty || fetching || document.hidden) return;
    var wait = 3000 - (Date.now() - lastFetch);
    if (wait > 0) { setTimeout(refresh, wait); return; }
    dirty = false; fetching = true; lastFetch = Date.now();
    fetch(details.dataset.src, { credentials: "same-origin", cache: "no-store" })
      .then(function (r) { if (!r.ok || r.redirected) throw new Error(r.status); return r.text(); })
      .then(function (html) { details.innerHTML = html; })
      .catch(function () { dirty = true; })
      .then(function () { fetching = false; if (dirty) setTimeout(refresh, 3000); });
  }
  document.addEventListener("visibilitychange", refresh);
  function take(e) {
    try { latest = JSON.parse(e.data); } catch (_) { return; }
    if (!timer) timer = setTimeout(render, 250);
  }
  function changed() { dirty = true; refresh(); }
  var es = new EventSource(board.dataset.events);
  es.addEventListener("open", function () { show("live", board.dataset.live); });
  es.addEventListener("error", function () {
    show("reconnecting", es.readyState === EventSource.CLOSED ? board.dataset.ended : board.dataset.away);
  });
  es.addEventListener("snapshot", function (e) { take(e); changed(); });
  es.addEventListener("progress", function (e) { take(e); changed(); });
})();
