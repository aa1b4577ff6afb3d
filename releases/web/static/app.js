// sagedeploy dashboard: live release progress over server-sent events, confirmations before
// commands, running durations. Plain JavaScript, no build step.
(function () {
  "use strict";

  var TONES = {
    succeeded: "ok", InService: "ok",
    failed: "bad", Failed: "bad", RollingBack: "bad",
    running: "busy", Creating: "busy", Updating: "busy", SystemUpdating: "busy", Deleting: "busy",
    pending: "wait", canceled: "off", OutOfService: "off"
  };
  var LABELS = { InService: "In service", OutOfService: "Out of service", RollingBack: "Rolling back", SystemUpdating: "System updating" };

  function label(s) {
    if (LABELS[s]) return LABELS[s];
    return s ? s.charAt(0).toUpperCase() + s.slice(1) : "";
  }

  function badge(status) {
    var b = document.createElement("span");
    b.className = "badge tone-" + (TONES[status] || "off");
    b.setAttribute("data-status", status);
    b.textContent = label(status);
    return b;
  }

  function pad(n) { return n < 10 ? "0" + n : "" + n; }

  function clock(iso) {
    var d = new Date(iso);
    if (isNaN(d)) return "";
    return pad(d.getUTCHours()) + ":" + pad(d.getUTCMinutes()) + ":" + pad(d.getUTCSeconds());
  }

  function human(ms) {
    var s = Math.max(0, Math.round(ms / 1000));
    if (s < 60) return s + "s";
    if (s < 3600) return Math.floor(s / 60) + "m " + (s % 60) + "s";
    return Math.floor(s / 3600) + "h " + Math.floor((s % 3600) / 60) + "m";
  }

  // Confirm before commands that change what an endpoint serves.
  document.addEventListener("submit", function (e) {
    var msg = e.target.getAttribute("data-confirm");
    if (msg && !window.confirm(msg)) e.preventDefault();
  });

  // Copy buttons for secrets shown once.
  document.addEventListener("click", function (e) {
    var t = e.target.closest("[data-copy]");
    if (!t) return;
    var el = document.getElementById(t.getAttribute("data-copy"));
    if (el && navigator.clipboard) {
      navigator.clipboard.writeText(el.textContent.trim()).then(function () { t.textContent = "Copied"; });
    }
  });

  // Running durations tick every second.
  function tickDurations() {
    document.querySelectorAll("[data-started]:not([data-finished])").forEach(function (el) {
      var started = Date.parse(el.getAttribute("data-started"));
      if (!isNaN(started)) el.textContent = human(Date.now() - started);
    });
  }
  setInterval(tickDurations, 1000);

  // Release page: progress events and state changes arrive live.
  var list = document.getElementById("events");
  if (list && list.getAttribute("data-stream")) {
    var url = list.getAttribute("data-stream") + "?after=" + (list.getAttribute("data-after") || "0");
    var es = new EventSource(url);
    var live = document.getElementById("live");
    if (live) live.hidden = false;

    es.addEventListener("progress", function (m) {
      var ev = JSON.parse(m.data);
      if (list.querySelector('[data-seq="' + ev.seq + '"]')) return;
      var li = document.createElement("li");
      li.className = "ev fresh";
      li.setAttribute("data-seq", ev.seq);
      var t = document.createElement("time");
      t.textContent = clock(ev.time);
      var ph = document.createElement("span");
      ph.className = "phase";
      ph.textContent = ev.phase || "";
      var msg = document.createElement("span");
      msg.className = "msg";
      msg.textContent = ev.message;
      li.appendChild(t); li.appendChild(ph); li.appendChild(msg);
      var tail = document.createElement("span");
      if (ev.endpoint_status) tail.appendChild(badge(ev.endpoint_status));
      li.appendChild(tail);
      list.appendChild(li);
      var empty = document.getElementById("events-empty");
      if (empty) empty.hidden = true;
    });

    es.addEventListener("release", function (m) {
      var st = JSON.parse(m.data);
      var holder = document.getElementById("release-status");
      if (holder) {
        holder.setAttribute("data-status", st.status);
        holder.innerHTML = "";
        holder.appendChild(badge(st.awaiting_approval ? "pending" : st.status));
        if (st.awaiting_approval) holder.lastChild.textContent = "Awaiting approval";
      }
      var dur = document.getElementById("release-duration");
      if (dur) {
        if (st.started_at) dur.setAttribute("data-started", st.started_at);
        if (st.finished_at) { dur.setAttribute("data-finished", st.finished_at); dur.textContent = st.duration || ""; }
      }
      setText("release-started", st.started_at ? clock(st.started_at) + " UTC" : null);
      setText("release-finished", st.finished_at ? clock(st.finished_at) + " UTC" : null);
      var fail = document.getElementById("failure");
      if (fail) {
        fail.hidden = !st.failure_reason;
        setText("failure-reason", st.failure_reason || "");
        var why = document.getElementById("release-reason");
        if (why) { why.hidden = !st.reason_text; why.textContent = st.reason_text ? " (" + st.reason_text + ")" : ""; why.setAttribute("data-reason", st.reason || ""); }
      }
      var gate = document.getElementById("approval");
      if (gate && !st.awaiting_approval) gate.hidden = true;
      setText("approved-by", st.approved_by || null);
      setText("command-state", st.command_state ? st.command_state.replace("_", " ") : null);
      var note = document.getElementById("command-note");
      if (note) { note.hidden = !st.command_note; note.textContent = st.command_note || ""; }
      var cancel = document.getElementById("cancel-form");
      if (cancel && st.status !== "pending") cancel.hidden = true;
      if (cancel && st.command_state === "dispatched") cancel.hidden = true;
    });

    es.addEventListener("end", function () {
      es.close();
      if (live) live.hidden = true;
    });
  }

  // Every page: the parts marked data-live follow the dashboard's live stream. On each change the
  // page fetches itself again and swaps those parts in place (no reload, scroll kept); a part the
  // user is busy with is left alone until the next change.
  var liveURL = document.body.getAttribute("data-live-stream");
  var fetching = false, again = false;

  function refreshLive() {
    if (fetching) { again = true; return; }
    fetching = true;
    fetch(location.href, { credentials: "same-origin", headers: { "X-Live": "1" } })
      .then(function (res) { return res.ok && !res.redirected ? res.text() : null; })
      .then(function (html) { if (html) swapLive(new DOMParser().parseFromString(html, "text/html")); })
      .catch(function () {})
      .then(function () {
        fetching = false;
        if (again) { again = false; refreshLive(); }
      });
  }

  // busy says whether a part holds what the user is doing: the field being typed in, or a field
  // already changed (say the instance count, typed before reaching for the Scale button).
  function busy(el) {
    var focus = document.activeElement;
    if (focus && focus !== document.body && el.contains(focus) && /^(INPUT|SELECT|TEXTAREA)$/.test(focus.tagName)) return true;
    return Array.prototype.some.call(el.querySelectorAll("input:not([type=hidden]), textarea, select"), function (f) {
      if (f.tagName === "SELECT") return Array.prototype.some.call(f.options, function (o) { return o.selected !== o.defaultSelected; });
      if (f.type === "checkbox" || f.type === "radio") return f.checked !== f.defaultChecked;
      return f.value !== f.defaultValue;
    });
  }

  function swapLive(doc) {
    document.querySelectorAll("[data-live][id]").forEach(function (el) {
      var next = doc.getElementById(el.id);
      if (!next || next.outerHTML === el.outerHTML || busy(el)) return;
      el.replaceWith(document.importNode(next, true));
    });
    filterModels();
    document.dispatchEvent(new CustomEvent("live:swapped"));
  }

  // A hidden tab lets its stream go: browsers allow about six connections to a server over
  // HTTP/1.1, and a dozen dashboard tabs each holding one would stall every other request. The
  // stream's first event on return brings the page up to date.
  var dash = null;
  function connectLive() {
    if (dash || !liveURL || !window.EventSource) return;
    dash = new EventSource(liveURL);
    dash.addEventListener("change", refreshLive);
  }
  function disconnectLive() {
    if (dash) { dash.close(); dash = null; }
  }
  if (document.visibilityState !== "hidden") connectLive();
  document.addEventListener("visibilitychange", function () {
    if (document.visibilityState === "hidden") disconnectLive(); else connectLive();
  });
  window.addEventListener("pagehide", disconnectLive);
  window.addEventListener("pageshow", function () { if (document.visibilityState !== "hidden") connectLive(); });

  // Overview: the model filter narrows the rows as one types; the query is kept in the address so
  // that a reload, a shared link and the live refresh show the same rows (it also works without
  // JavaScript, as a plain GET form).
  var filter = document.getElementById("model-filter");
  var filterTimer = null;

  function filterModels() {
    if (!filter) return;
    var q = filter.value.trim().toLowerCase();
    var shown = 0;
    document.querySelectorAll("#overview tbody tr[data-model]").forEach(function (tr) {
      var match = tr.getAttribute("data-model").toLowerCase().indexOf(q) >= 0;
      tr.hidden = !match;
      if (match) shown++;
    });
    var none = document.getElementById("no-match-live");
    if (none) none.hidden = shown > 0 || !document.querySelector("#overview tbody tr[data-model]");
  }

  if (filter) {
    // "/" jumps to the filter, as on many sites with long lists. Some key event sources deliver
    // the "/" itself to the field after the jump even though its keydown was cancelled: drop it.
    var jumped = false;
    document.addEventListener("keydown", function (e) {
      var t = e.target;
      if (e.key !== "/" || e.ctrlKey || e.metaKey || e.altKey || /^(INPUT|SELECT|TEXTAREA)$/.test(t.tagName) || t.isContentEditable) return;
      e.preventDefault();
      jumped = true;
      filter.focus();
      filter.select();
    });
    document.addEventListener("keyup", function () { jumped = false; });
    filter.addEventListener("beforeinput", function (e) {
      if (jumped && e.data === "/") e.preventDefault();
      jumped = false;
    });
    filter.form.addEventListener("submit", function (e) { e.preventDefault(); });
    filter.addEventListener("input", function () {
      filterModels();
      var u = new URL(location.href);
      if (filter.value.trim()) u.searchParams.set("q", filter.value.trim()); else u.searchParams.delete("q");
      history.replaceState(null, "", u.pathname + u.search);
      // Rows the server left out for the previous query come back with a refresh.
      clearTimeout(filterTimer);
      filterTimer = setTimeout(refreshLive, 250);
    });
  }

  function setText(id, text) {
    var el = document.getElementById(id);
    if (!el || text === null) return;
    el.textContent = text;
    var row = el.closest("[data-optional]");
    if (row) row.hidden = text === "";
  }
})();
