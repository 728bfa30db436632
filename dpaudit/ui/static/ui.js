// The live run page: polls status.json every second while the job is queued or running and updates the
// page with textContent only (nothing from the server is parsed as HTML).
(function () {
  "use strict";
  var job = document.getElementById("job");
  if (!job || job.dataset.active !== "yes") { return; }
  var url = job.dataset.statusUrl;
  function set(id, text) { var el = document.getElementById(id); if (el) { el.textContent = text; } }
  function show(id, visible) { var el = document.getElementById(id); if (el) { el.hidden = !visible; } }
  function tick() {
    fetch(url, {credentials: "same-origin", cache: "no-store"}).then(function (r) { return r.json(); }).then(function (s) {
      var status = document.getElementById("status");
      status.textContent = s.status; status.className = "status status-" + s.status;
      set("stage", s.stage || "—");
      set("step", s.step === null ? "—" : s.step + " / " + s.total);
      set("epsilon", s.epsilon === null ? "—" : s.epsilon.toFixed(3));
      set("eta", s.eta || "—");
      set("log", s.log.join("\n"));
      set("job-error", s.error || ""); show("job-error", !!s.error);
      show("report-link", s.has_report);
      var active = s.status === "queued" || s.status === "running";
      show("cancel-form", active); show("resume-form", s.resumable);
      if (active) { setTimeout(tick, 1000); }
    }).catch(function () { setTimeout(tick, 3000); });
  }
  setTimeout(tick, 1000);
})();
