// Live progress without reloading: poll the staff-only JSON endpoint for every element marked
// data-live-job / data-live-experiment, and replace the fields it names. No library.
(function () {
  "use strict";
  var script = document.currentScript;
  var url = script.getAttribute("data-url");
  var seconds = parseFloat(script.getAttribute("data-seconds")) || 3;
  var finished = ["succeeded", "failed", "cancelled", "completed", "stopped"];

  function ids(attribute) {
    return Array.prototype.map.call(document.querySelectorAll("[" + attribute + "]"), function (el) {
      return el.getAttribute(attribute);
    });
  }

  function fill(root, data) {
    Array.prototype.forEach.call(root.querySelectorAll("[data-field]"), function (el) {
      var name = el.getAttribute("data-field");
      if (name === "bar") {
        el.style.width = Math.max(0, Math.min(100, data.progress || 0)) + "%";
      } else if (name in data) {
        if (/chart|_html$/.test(name)) { el.innerHTML = data[name]; } else { el.textContent = data[name]; }
      }
    });
    root.setAttribute("data-status", data.status);
  }

  function apply(kind, attribute, found) {
    var open = false;
    Array.prototype.forEach.call(document.querySelectorAll("[" + attribute + "]"), function (root) {
      var data = found[root.getAttribute(attribute)];
      if (!data) { return; }
      fill(root, data);
      if (finished.indexOf(data.status) === -1) { open = true; }
    });
    return open;
  }

  function poll() {
    var jobs = ids("data-live-job"), experiments = ids("data-live-experiment");
    if (!jobs.length && !experiments.length) { return; }
    var query = jobs.map(function (id) { return "job=" + encodeURIComponent(id); })
      .concat(experiments.map(function (id) { return "experiment=" + encodeURIComponent(id); })).join("&");
    if (document.querySelector('[data-field="trials_html"]')) { query += "&trials=1"; }
    fetch(url + "?" + query, {credentials: "same-origin", headers: {"Accept": "application/json"}})
      .then(function (response) { return response.ok ? response.json() : Promise.reject(response.status); })
      .then(function (payload) {
        var open = apply("job", "data-live-job", payload.jobs) | apply("experiment", "data-live-experiment", payload.experiments);
        document.body.setAttribute("data-live-updated", new Date().toISOString());
        if (open) { window.setTimeout(poll, seconds * 1000); }
      })
      .catch(function () { window.setTimeout(poll, seconds * 4000); });
  }

  window.setTimeout(poll, seconds * 1000);
})();
