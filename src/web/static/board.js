// The incident board, live: the incident's events over SSE (the browser resumes a dropped
// stream with Last-Event-ID), rendered at most four times a second however fast they come —
// a 10,000-callout fan-out must not freeze the page. No inline script: the CSP forbids it.
(function () {
  "use strict";
  var board = document.querySelector("[data-events]");
  if (!board || !window.EventSource) return;
  var live = document.getElementById("live");
  var STATUS = {
    mustering: "集结中 Mustering", filled: "已满员 Filled", short: "缺员 Short",
    stood_down: "已解除 Stood down", closed: "已归档 Closed"
  };
  var TIER = { township: "乡镇 township", county: "县区 county", city: "市 city" };
  var latest = null, timer = null;
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
      set(row, "step", r.step + " · " + (TIER[r.tier] || r.tier));
      set(row, "next", r.next_step_at || "—");
      var bar = row.querySelector("progress");
      if (bar) { bar.max = r.needed; bar.value = r.accepted; }
      row.classList.toggle("short", !!r.short);
    });
    var status = board.querySelector('[data-f="status"]');
    if (status && v.status) status.textContent = STATUS[v.status] || v.status;
  }
  function take(e) {
    try { latest = JSON.parse(e.data); } catch (_) { return; }
    if (!timer) timer = setTimeout(render, 250);
  }
  var es = new EventSource(board.dataset.events);
  es.addEventListener("open", function () { show("live", "实时 Live"); });
  es.addEventListener("error", function () {
    show("reconnecting", es.readyState === EventSource.CLOSED ? "已结束 Ended" : "重新连接中… Reconnecting");
  });
  es.addEventListener("snapshot", take);
  es.addEventListener("progress", take);
})();
