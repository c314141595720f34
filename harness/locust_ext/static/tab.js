// The Delivery tab: Locust renders extended tabs as a plain table, so this script draws the harness's own
// panel (verdict banner, phases, fault schedule, sender/recipient groups) from /delivery/state in place of
// it. If this script does not run, Locust's plain table (same numbers) stays visible.
(function () {
  "use strict";
  const STATE_URL = "/delivery/state";
  let last = null;
  let lastText = "";
  let fresh = false; // a poll brought data not drawn yet

  function el(tag, attrs, children) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (k === "text") node.textContent = v;
      else node.setAttribute(k, v);
    }
    for (const child of children || []) if (child) node.appendChild(child);
    return node;
  }
  const fmt = (v) => (v === null || v === undefined ? "-" : typeof v === "number" ? v.toLocaleString("en") : String(v));
  const secs = (v) => (v === null || v === undefined ? "-" : v.toFixed(1) + " s");

  function banner(s) {
    const v = s.verdict;
    if (!v) {
      return el("div", {class: "dlv-banner dlv-LIVE", "data-verdict": "none"}, [
        el("span", {class: "dlv-label", text: "RUNNING"}),
        el("span", {class: "dlv-headline", text: "not judged yet: " + s.phase + ", " + secs(s.elapsed_s)}),
        el("div", {class: "dlv-line", text: "Numbers below are provisional until the drain ends and the checker judges the ledger."}),
      ]);
    }
    const counts = el("div", {class: "dlv-counts"}, v.counts.map((c) =>
      el("span", {class: "dlv-count"}, [el("b", {text: fmt(c.value)}), document.createTextNode(" " + c.name)])));
    const lines = [
      el("span", {class: "dlv-label", text: v.label}),
      el("span", {class: "dlv-headline", text: s.target + ": " + v.headline}),
      counts,
    ];
    if (v.reason) lines.push(el("div", {class: "dlv-line dlv-reason", text: "Why: " + v.reason}));
    if (v.claim) lines.push(el("div", {class: "dlv-line", text: "Claim: " + v.claim}));
    if (v.experiment) lines.push(el("div", {class: "dlv-line dlv-experiment", text: v.experiment}));
    const tail = el("div", {class: "dlv-line"}, []);
    if (v.report_url) tail.appendChild(el("a", {href: v.report_url, target: "_blank", class: "dlv-report", text: "Open report.html"}));
    tail.appendChild(document.createTextNode("  · exit code " + fmt(v.exit_code)));
    lines.push(tail);
    return el("div", {class: "dlv-banner dlv-" + v.label, "data-verdict": v.label}, lines);
  }

  function phases(s) {
    const items = s.phases.map((p) => el("span", {class: "dlv-phase" + (p.current ? " current" : ""),
      text: p.phase + " " + secs(p.seconds)}));
    const row = el("div", {class: "dlv-phases"}, [el("b", {text: "Phase:"})]);
    items.forEach((item, i) => { if (i) row.appendChild(document.createTextNode("→")); row.appendChild(item); });
    row.appendChild(el("span", {class: "dlv-note", text: "elapsed " + secs(s.elapsed_s) + " (sending planned " + secs(s.sending_planned_s) + ")"}));
    return row;
  }

  function schedule(s) {
    if (!s.schedule.length) return el("p", {class: "dlv-note", text: "No faults scheduled."});
    const head = el("tr", {}, ["Fault", "Type", "Cohort", "From", "To", "State"].map((t, i) =>
      el("th", {class: i < 3 || i === 5 ? "dlv-text" : "", text: t})));
    const rows = s.schedule.map((f) => el("tr", {}, [
      el("td", {class: "dlv-text", text: f.fault}), el("td", {class: "dlv-text", text: f.type}),
      el("td", {class: "dlv-text", text: f.cohort}), el("td", {text: secs(f.start_s)}), el("td", {text: secs(f.end_s)}),
      el("td", {class: "dlv-text dlv-state-" + f.state.split(" ")[0], text: f.state})]));
    return el("div", {class: "dlv-scroll"}, [el("table", {class: "dlv-schedule"}, [el("thead", {}, [head]), el("tbody", {}, rows)]),
      el("p", {class: "dlv-note", text: "Times are seconds after sending started."})]);
  }

  function cohorts(s) {
    const final = !s.provisional;
    const rec = final ? [["received", "Received"], ["lost", "Lost"], ["unseen", "Unseen"], ["duplicated", "Duplicated"], ["reconnects", "Reconnects"]]
      : [["received", "Received"], ["unseen_now", "Unseen now (provisional)"], ["duplicated", "Duplicated"], ["reconnects", "Reconnects"]];
    const snd = [["sent", "Sent"], ["acked", "Acked"], ["failed", "Refused"], ["info", "Outcome unknown"]];
    const groups = el("tr", {}, [el("th", {class: "dlv-text", rowspan: "2", text: "Cohort"}),
      el("th", {class: "dlv-group", colspan: String(snd.length), text: "As sender"}),
      el("th", {class: "dlv-group", colspan: String(rec.length + 1), text: "As recipient"})]);
    const names = el("tr", {}, [...snd.map(([, t]) => el("th", {text: t})), el("th", {text: "Connected"}),
      ...rec.map(([k, t]) => el("th", {class: k === "unseen_now" ? "dlv-provisional" : "", text: t}))]);
    const body = s.cohorts.map((c) => el("tr", {"data-cohort": c.cohort}, [
      el("td", {class: "dlv-text", text: c.cohort}),
      ...snd.map(([k]) => el("td", {text: fmt(c.sender[k])})),
      el("td", {text: c.connected + "/" + c.users}),
      ...rec.map(([k]) => el("td", {class: k === "unseen_now" ? "dlv-provisional" : "", text: fmt(c.recipient[k])}))]));
    // active faults per cohort are in the schedule below (state "active"): one column less fits 800 px
    const note = final ? "Final: lost and unseen per recipient cohort, from the verdict."
      : "Provisional: \"unseen now\" is acknowledged and not yet received; only the verdict says what is lost.";
    return el("div", {class: "dlv-scroll"}, [el("table", {class: "dlv-cohorts"}, [el("thead", {}, [groups, names]), el("tbody", {}, body)]),
      el("p", {class: "dlv-note", text: note})]);
  }

  function render(s) {
    return el("div", {class: "dlv", id: "delivery-panel"}, [
      banner(s), phases(s), el("h2", {text: "Per cohort"}), cohorts(s), el("h2", {text: "Fault schedule"}), schedule(s),
      el("p", {}, [el("a", {href: "/delivery", text: "Fault controls (inject / heal by hand)"})]),
    ]);
  }

  function place() {
    if (new URLSearchParams(window.location.search).get("tab") !== "delivery" || !last) return;
    const th = document.querySelector("th[data-sortkey='cohort']");
    if (!th) return;
    const box = th.closest(".MuiTableContainer-root") || th.closest("table");
    const old = document.getElementById("delivery-panel");
    if (old && !fresh) return; // redraw only on new data (a redraw under the pointer would eat a click)
    const panel = render(last);
    if (old) old.replaceWith(panel);
    else box.parentNode.insertBefore(panel, box);
    fresh = false;
    box.style.display = "none"; // the same numbers, drawn above with their groups
  }

  async function poll() {
    try {
      const r = await fetch(STATE_URL, {cache: "no-store"});
      if (r.ok) {
        const text = await r.text();
        fresh = fresh || text !== lastText;
        lastText = text;
        last = JSON.parse(text);
      }
    } catch (e) { /* the UI is going away; keep the last picture */ }
    place();
  }
  setInterval(poll, 1000);
  setInterval(place, 300); // the tab may be (re)opened between polls
  poll();
})();
