// drplan serve: refresh the live part of the page in place (the page works without this:
// a <noscript> meta refresh reloads it whole). A run's page also listens to its journal's
// events and refreshes on each one.
(function () {
  "use strict";
  var live = document.getElementById("live");
  var conn = document.getElementById("conn");
  if (!live || !live.dataset.refresh) return;
  var every = Number(live.dataset.refresh) * 1000;
  var busy = false;
  function swap() {
    if (busy) return;
    busy = true;
    var url = location.pathname + "?fragment=1";
    fetch(url, { cache: "no-store", credentials: "same-origin" })
      .then(function (r) {
        if (!r.ok) throw new Error("HTTP " + r.status);
        return r.text();
      })
      .then(function (html) {
        live.innerHTML = html;
        live.dataset.updated = new Date().toISOString();
        if (conn) conn.textContent = "";
      })
      .catch(function (e) {
        if (conn) conn.textContent = "not updated: " + e.message;
      })
      .then(function () { busy = false; });
  }
  setInterval(swap, every);
  if (live.dataset.events && window.EventSource) {
    var source = new EventSource(live.dataset.events);
    source.onmessage = swap;
    source.addEventListener("end", function () { source.close(); swap(); });
  }
})();
