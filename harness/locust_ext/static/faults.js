// The fault page: each button's answer is shown in words (the server's "message" or "error"), never as raw
// JSON; once the run has ended the buttons are disabled and the page says why.
(function () {
  "use strict";
  const status = document.getElementById("status");

  function say(text, ok) {
    status.textContent = text;
    status.className = "dlv-status " + (ok ? "ok" : "refused");
  }

  function ended(s) {
    return s.verdict !== null || s.ledger_phase === "end" || s.ledger_phase === "interrupted";
  }

  async function refresh() {
    try {
      const r = await fetch("/delivery/state", {cache: "no-store"});
      if (!r.ok) return;
      const s = await r.json();
      document.getElementById("phase").textContent = s.phase;
      const over = ended(s);
      document.getElementById("phase-note").textContent = over
        ? "The run has ended: faults can no longer be injected or healed (nothing would be recorded in the ledger)."
        : "elapsed " + s.elapsed_s.toFixed(1) + " s";
      document.querySelectorAll("button[data-action]").forEach((b) => { b.disabled = over; });
      const active = new Set(s.cohorts.flatMap((c) => c.faults_active));
      document.querySelectorAll("tr[data-fault]").forEach((row) => {
        row.querySelector(".state").textContent = active.has(row.dataset.fault) ? "active" : "not active";
      });
    } catch (e) { /* the UI is going away */ }
  }

  for (const b of document.querySelectorAll("button[data-action]")) {
    b.addEventListener("click", async () => {
      let body = {};
      let r = null;
      try {
        r = await fetch("/delivery/faults/" + encodeURIComponent(b.dataset.fault) + "/" + b.dataset.action,
          {method: "POST", headers: {"Content-Type": "application/json"}, body: "{}"});
        body = await r.json();
      } catch (e) {
        say("No answer from the load process (" + e + "): the action may not have happened.", false);
        return;
      }
      if (r.ok) say(body.message, true);
      else say("Refused: " + (body.error || ("HTTP " + r.status)), false);
      refresh();
    });
  }
  refresh();
  setInterval(refresh, 1000);
})();
