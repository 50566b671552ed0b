// Live progress for run and task pages: polls the run's status.json
// (named by the #poll element's data-poll) and updates the task states in
// place; when the run or the watched task reaches a new final state the
// page reloads to show the outcome and the log. Polling stops when the
// server refuses it (401 or 403). No inline script: the
// Content-Security-Policy allows only this file.
(function () {
  "use strict";
  var el = document.getElementById("poll");
  if (!el) { return; }
  var url = el.getAttribute("data-poll");
  var rendered = el.getAttribute("data-state");
  var task = el.getAttribute("data-task");
  var taskRendered = el.getAttribute("data-task-state");
  var finalStates = { success: 1, failed: 1, cancelled: 1, skipped: 1 };
  if (finalStates[rendered] && (!task || finalStates[taskRendered])) { return; }

  function setChip(node, cls, text) {
    if (!node) { return; }
    node.className = node.className.replace(/\bs-[a-z]+\b/g, "").trim() + " " + cls;
    if (text !== null) { node.textContent = text; }
  }

  function apply(st) {
    setChip(document.getElementById("run-state"), st.class, st.state);
    st.tasks.forEach(function (t) {
      var row = document.querySelector('tr[data-task="' + CSS.escape(t.task) + '"]');
      if (!row) { return; }
      var chip = row.querySelector(".state");
      setChip(chip, t.class, null);
      if (chip) {
        chip.querySelector(".mark").textContent = t.mark;
        chip.querySelector(".label").textContent = t.state;
      }
      var att = row.querySelector(".attempts");
      if (att) { att.textContent = String(t.attempts); }
      if (task && t.task === task && t.state !== taskRendered) { location.reload(); }
    });
    if (st.done && st.state !== rendered) { location.reload(); }
    return !st.done;
  }

  // A 401 (the session ended) or 403 (access withdrawn) will not change
  // by asking again, and every refused request is recorded: polling
  // stops. Other failures are retried more slowly.
  function poll() {
    fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (r) {
        if (r.status === 401 || r.status === 403) { return null; }
        if (!r.ok) { throw new Error("status " + r.status); }
        return r.json();
      })
      .then(function (st) { if (st && apply(st)) { setTimeout(poll, 1000); } })
      .catch(function () { setTimeout(poll, 5000); });
  }
  setTimeout(poll, 1000);
})();
