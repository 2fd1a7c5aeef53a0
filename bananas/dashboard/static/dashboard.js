// Bananas dashboard: live updates by Server-Sent Events, actions and bulk actions.
// No framework, no build step; everything is wired by event delegation on document,
// so blocks swapped in by a live update keep working.
(function () {
  "use strict";
  var base = document.querySelector('meta[name="base"]').content;
  var csrf = document.querySelector('meta[name="csrf-token"]').content;
  var live = document.getElementById("live");
  var toggle = document.getElementById("live-toggle");
  var status = document.getElementById("live-status");
  var source = null;

  function setStatus(state, text) {
    if (!status) return;
    status.dataset.state = state;
    status.textContent = text;
  }

  function flash(text, kind) {
    var box = document.getElementById("flash");
    box.textContent = text;
    box.className = kind || "ok";
    box.hidden = false;
    clearTimeout(flash.timer);
    flash.timer = setTimeout(function () { box.hidden = true; }, 6000);
  }

  function checkedIds() {
    return Array.prototype.map.call(live.querySelectorAll("input.select:checked"), function (el) {
      return el.value;
    });
  }

  function swap(html) {
    var keep = checkedIds();
    live.innerHTML = html;
    keep.forEach(function (id) {
      var box = live.querySelector('input.select[value="' + CSS.escape(id) + '"]');
      if (box) box.checked = true;
    });
    live.dataset.updates = String(Number(live.dataset.updates) + 1);
  }

  function seen() {
    setStatus("live", "live");
    if (status) status.title = "checked " + new Date().toLocaleTimeString();
  }

  function connect() {
    if (source || !live.dataset.view) return;
    var url = base + "/api/stream?view=" + encodeURIComponent(live.dataset.view);
    if (live.dataset.params) url += "&" + live.dataset.params;
    if (live.dataset.since) url += "&since=" + encodeURIComponent(live.dataset.since);
    if (live.dataset.view === "job") url += "&job_id=" + encodeURIComponent(location.pathname.split("/").pop());
    source = new EventSource(url);
    source.addEventListener("open", function () { setStatus("live", "live"); });
    source.addEventListener("update", function (ev) { swap(JSON.parse(ev.data).html); seen(); });
    source.addEventListener("tick", seen);
    source.addEventListener("problem", function (ev) {
      setStatus("connecting", "Redis unreachable");
      if (status) status.title = JSON.parse(ev.data).error;
    });
    source.addEventListener("error", function () {
      if (source && source.readyState === EventSource.CLOSED) { source = null; setStatus("paused", "disconnected"); }
      else setStatus("connecting", "reconnecting");
    });
  }

  function disconnect() {
    if (source) { source.close(); source = null; }
    setStatus("paused", "paused");
  }

  if (toggle && live.dataset.view) {
    toggle.checked = localStorage.getItem("bananas-live") !== "off";
    toggle.addEventListener("change", function () {
      localStorage.setItem("bananas-live", toggle.checked ? "on" : "off");
      if (toggle.checked) connect(); else disconnect();
    });
    if (toggle.checked) connect(); else setStatus("paused", "paused");
    // A page left for another keeps no stream open: browsers allow a handful of
    // connections per host (HTTP/1.1), and a page kept in the back-forward cache
    // would otherwise hold one. Coming back from that cache reconnects.
    window.addEventListener("pagehide", function () { if (source) { source.close(); source = null; } });
    window.addEventListener("pageshow", function (ev) { if (ev.persisted && toggle.checked) connect(); });
  }

  function post(path, body) {
    return fetch(base + path, {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-CSRF-Token": csrf },
      body: JSON.stringify(body || {})
    }).then(function (r) {
      return r.json().then(function (data) {
        if (!r.ok) throw new Error(data.error || r.statusText);
        return data;
      });
    });
  }

  var dialog = document.getElementById("confirm");
  function confirmThen(text, run) {
    document.getElementById("confirm-text").textContent = text;
    dialog.returnValue = "";
    dialog.onclose = function () { if (dialog.returnValue === "ok") run(); };
    dialog.showModal();
  }

  function label(action) { return action.replace("_", " "); }

  // Filters submit themselves on change (no inline handlers: the CSP forbids them).
  document.addEventListener("change", function (ev) {
    if (ev.target.matches("select[data-autosubmit]")) ev.target.form.submit();
  });

  document.addEventListener("click", function (ev) {
    var el = ev.target.closest("button[data-action], button[data-bulk], button[data-schedule-action], button[data-queue-action], button[data-workflow-action], input.select-all");
    if (!el) return;
    if (el.matches("input.select-all")) {
      live.querySelectorAll("input.select").forEach(function (box) { box.checked = el.checked; });
      return;
    }
    ev.preventDefault();
    if (el.dataset.workflowAction) {
      var wf = el.dataset.workflow;
      confirmThen("cancel workflow " + wf + " (every step not finished yet)?", function () {
        post("/api/workflows/" + encodeURIComponent(wf) + "/actions/cancel")
          .then(function (d) { flash("workflow " + wf + (d.cancelled ? " cancelled" : " was already finished")); })
          .catch(function (e) { flash(e.message, "error"); });
      });
      return;
    }
    if (el.dataset.queueAction) {
      var qa = el.dataset.queueAction, rk = el.dataset.rk;
      confirmThen(qa + " routing key " + rk + "?", function () {
        post("/api/queues/" + encodeURIComponent(rk) + "/actions/" + qa)
          .then(function () { flash(qa + ": " + rk); })
          .catch(function (e) { flash(e.message, "error"); });
      });
      return;
    }
    if (el.dataset.scheduleAction) {
      var what = el.dataset.scheduleAction, id = el.dataset.schedule;
      confirmThen(what + " schedule " + id + "?", function () {
        post("/api/schedules/" + encodeURIComponent(id) + "/actions/" + what)
          .then(function (d) { flash(what + ": " + id + (d.job_id ? " fired job " + d.job_id : "")); })
          .catch(function (e) { flash(e.message, "error"); });
      });
      return;
    }
    if (el.dataset.action) {
      var action = el.dataset.action, job = el.dataset.job;
      confirmThen(label(action) + " job " + job + "?", function () {
        post("/api/jobs/" + encodeURIComponent(job) + "/actions/" + action + "?routing_key=" + encodeURIComponent(el.dataset.rk))
          .then(function (d) { flash(label(action) + ": " + d.count + " job(s)"); if (action === "delete") setTimeout(function () { location.reload(); }, 300); })
          .catch(function (e) { flash(e.message, "error"); });
      });
      return;
    }
    var bulk = document.getElementById("bulk");
    var filter = { routing_key: bulk.dataset.routingKey, state: bulk.dataset.state, priority: bulk.dataset.priority, query: bulk.dataset.query };
    var act = el.dataset.bulk;
    if (el.dataset.scope === "selection") {
      var ids = checkedIds();
      if (!ids.length) { flash("select some jobs first", "error"); return; }
      confirmThen(label(act) + " " + ids.length + " selected job(s)?", function () {
        post("/api/bulk", { action: act, routing_key: filter.routing_key, ids: ids })
          .then(function (d) { flash(label(act) + ": " + d.count + " of " + d.selected + " job(s)"); })
          .catch(function (e) { flash(e.message, "error"); });
      });
      return;
    }
    post("/api/bulk/preview", { filter: filter }).then(function (p) {
      var what = p.count + " " + filter.state.replace("_", " ") + " job(s) on " + filter.routing_key;
      if (filter.query) what += " matching \u201c" + filter.query + "\u201d";
      if (p.limited) what += " (among the first " + p.scanned + " looked at)";
      confirmThen(label(act) + " " + what + "?", function () {
        post("/api/bulk", { action: act, filter: filter, expected: p.count })
          .then(function (d) { flash(label(act) + ": " + d.count + " job(s)"); })
          .catch(function (e) { flash(e.message, "error"); });
      });
    }).catch(function (e) { flash(e.message, "error"); });
  });
})();
