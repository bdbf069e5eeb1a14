// Keeps the Overview's figures current without reloading the page: every 5 s it fetches the
// page again (same origin, as the Content-Security-Policy allows) and puts in each part marked
// data-live the fresh copy of it. A failed fetch is tried again at the next turn.
(function () {
  "use strict";
  var EVERY = 5000;

  function refresh() {
    fetch(window.location.pathname, { cache: "no-store", credentials: "same-origin" })
      .then(function (answer) {
        if (!answer.ok) throw new Error("HTTP " + answer.status);
        return answer.text();
      })
      .then(function (html) {
        var fresh = new DOMParser().parseFromString(html, "text/html");
        document.querySelectorAll("[data-live]").forEach(function (part) {
          var copy = fresh.getElementById(part.id);
          if (copy) part.replaceWith(document.importNode(copy, true));
        });
        var stamp = document.getElementById("refreshed");
        if (stamp) stamp.textContent = "refreshed at " + new Date().toLocaleTimeString();
        document.body.dataset.refreshes = String(Number(document.body.dataset.refreshes || 0) + 1);
      })
      .catch(function () {})
      .then(function () { window.setTimeout(refresh, EVERY); });
  }

  window.setTimeout(refresh, EVERY);
})();
