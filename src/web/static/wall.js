// The wall screen follows the scope's active incidents: it fetches its cards every five
// seconds and swaps them in. When muster is away (a restart, the network) it says so and keeps
// trying, so the screen comes back by itself. No inline script: the CSP forbids it.
(function () {
  "use strict";
  var wall = document.getElementById("wall");
  var live = document.getElementById("live");
  if (!wall || !window.fetch) return;
  function show(state) {
    live.dataset.state = state;
    live.textContent = state === "live" ? wall.dataset.live : wall.dataset.away;
  }
  function poll() {
    fetch(wall.dataset.src, { credentials: "same-origin", cache: "no-store" })
      .then(function (r) {
        if (r.redirected || !r.ok) throw new Error("status " + r.status);
        return r.text();
      })
      .then(function (html) { wall.innerHTML = html; show("live"); })
      .catch(function () { show("reconnecting"); })
      .then(function () { setTimeout(poll, 5000); });
  }
  show("live");
  setTimeout(poll, 5000);
})();
