// The raise form sends once: the button is disabled as the form goes (the server's
// idempotency key already makes a second send raise nothing new). No inline script.
(function () {
  "use strict";
  document.querySelectorAll("form[data-once]").forEach(function (f) {
    f.addEventListener("submit", function () {
      f.querySelectorAll("button[type=submit]").forEach(function (b) {
        setTimeout(function () { b.disabled = true; }, 0);
      });
    });
  });
})();
