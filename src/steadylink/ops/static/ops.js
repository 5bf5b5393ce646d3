// The dashboard's small progressive enhancement: live serving/rollout figures and a confirm
// before a rollback. Everything works without it (forms post, pages render on the server).
"use strict";
(function () {
  document.querySelectorAll("form[data-confirm]").forEach(function (form) {
    form.addEventListener("submit", function (event) {
      if (!window.confirm(form.getAttribute("data-confirm"))) { event.preventDefault(); }
    });
  });
  var serving = document.querySelector("[data-live=serving]");
  if (!serving) { return; }
  var slots = document.querySelector("[data-live=slots] tbody");
  var rollout = document.querySelector("[data-live=rollout]");
  function cell(row, text, nowrap) {
    var td = document.createElement("td");
    td.textContent = text === null || text === undefined ? "-" : String(text);
    if (nowrap) { td.className = "nowrap"; }  // as the server renders them: short cells stay whole
    row.appendChild(td);
  }
  function refresh() {
    fetch("/dash/live.json", { credentials: "same-origin", cache: "no-store" })
      .then(function (r) { return r.ok ? r.json() : null; })
      .then(function (data) {
        if (!data) { return; }
        serving.textContent = data.status.serving || "nothing";
        slots.replaceChildren();
        data.status.slots.forEach(function (s) {
          var row = document.createElement("tr");
          [s.slot, s.release, s.weight, s.haproxy_status, s.errors_5xx].forEach(function (v, i) { cell(row, v, i !== 1); });
          slots.appendChild(row);
        });
        rollout.textContent = data.rollout
          ? "Rollout of " + data.rollout.release + ": " + data.rollout.verdict + " — " + data.rollout.steps.join(", ")
          : "No rollout in progress.";
      })
      .catch(function () { /* the guard restarting: try again next time */ });
  }
  window.setInterval(refresh, 3000);
})();
