/* The shopper's grid: stopwatch, ring counter, working-day delays, local drafts and an
   offline queue. Progressive enhancement: without this file the form posts as is. */
(function () {
  "use strict";

  var QUEUE_KEY = "barometre-visit-queue";
  var form = document.getElementById("grid-form");
  if (!form) {
    /* Another shopper page (the mission list): still send what was queued offline. */
    window.addEventListener("online", function () { flushQueue(); });
    if (navigator.onLine) { flushQueue(); }
    return;
  }

  var draftKey = form.dataset.draftKey;
  var statusBox = form.querySelector(".sync-status");
  var timingsInput = form.querySelector(".grid-timings");
  var holidays = {};
  (form.dataset.holidays || "").split(",").forEach(function (day) { if (day) { holidays[day] = true; } });

  function say(message) { if (statusBox && message) { statusBox.textContent = message; } }

  function readTimings() {
    try { return JSON.parse(timingsInput.value || "{}") || {}; } catch (e) { return {}; }
  }
  function writeTimings(timings) { timingsInput.value = JSON.stringify(timings); saveDraft(); }

  /* --- local draft: every field (but the CSRF token) saved as typed ---------------------- */
  function fields() {
    var pairs = [];
    Array.prototype.forEach.call(form.elements, function (el) {
      if (!el.name || el.name === "csrf_token" || el.disabled) { return; }
      if ((el.type === "radio" || el.type === "checkbox") && !el.checked) { return; }
      pairs.push([el.name, el.value]);
    });
    return pairs;
  }
  function saveDraft() {
    try { localStorage.setItem(draftKey, JSON.stringify({saved: Date.now(), fields: fields()})); } catch (e) { /* full or private mode */ }
  }
  function restoreDraft() {
    var raw = null;
    try { raw = localStorage.getItem(draftKey); } catch (e) { return; }
    if (!raw || form.querySelector(".error-summary")) { return; }  /* the server's answer wins */
    var draft;
    try { draft = JSON.parse(raw); } catch (e) { return; }
    var byName = {};
    draft.fields.forEach(function (pair) { (byName[pair[0]] = byName[pair[0]] || []).push(pair[1]); });
    Array.prototype.forEach.call(form.elements, function (el) {
      if (!el.name || el.name === "csrf_token" || !(el.name in byName)) { return; }
      if (el.type === "radio" || el.type === "checkbox") {
        el.checked = byName[el.name].indexOf(el.value) !== -1;
      } else {
        el.value = byName[el.name][0];
      }
    });
    say(form.dataset.msgRestored);
  }
  function clearDraft() { try { localStorage.removeItem(draftKey); } catch (e) { /* ignore */ } }

  /* --- stopwatch: start waiting / served fill a duration from two timestamps ------------- */
  function two(n) { return (n < 10 ? "0" : "") + n; }
  function localNow() {
    var d = new Date();
    return d.getFullYear() + "-" + two(d.getMonth() + 1) + "-" + two(d.getDate()) + "T" + two(d.getHours()) + ":" + two(d.getMinutes());
  }
  function fillVisitedAt() {
    var input = form.querySelector("[name=visited_at]");
    if (input && !input.value) { input.value = localNow(); }
  }
  Array.prototype.forEach.call(form.querySelectorAll(".grid-duration"), function (box) {
    var key = box.dataset.item;
    var watch = box.querySelector(".stopwatch");
    var start = box.querySelector(".stopwatch-start");
    var stop = box.querySelector(".stopwatch-stop");
    var shown = box.querySelector(".stopwatch-time");
    var minutes = box.querySelector("[name$=_min]");
    var seconds = box.querySelector("[name$=_sec]");
    var timer = null;
    watch.hidden = false;
    function fill(total) {
      minutes.value = Math.floor(total / 60);
      seconds.value = total % 60;
      shown.textContent = Math.floor(total / 60) + ":" + two(total % 60);
      checkNudges();
    }
    function tick(startedAt) {
      fill(Math.max(0, Math.round((Date.now() - Date.parse(startedAt)) / 1000)));
    }
    var running = readTimings()[key];
    if (running && running.started_at && !running.stopped_at) {
      stop.disabled = false;
      timer = setInterval(function () { tick(running.started_at); }, 1000);
    }
    start.addEventListener("click", function () {
      var timings = readTimings();
      timings[key] = {started_at: new Date().toISOString()};
      writeTimings(timings);
      fillVisitedAt();
      stop.disabled = false;
      clearInterval(timer);
      timer = setInterval(function () { tick(timings[key].started_at); }, 1000);
      tick(timings[key].started_at);
      stop.focus();
    });
    stop.addEventListener("click", function () {
      var timings = readTimings();
      if (!timings[key] || !timings[key].started_at) { return; }
      clearInterval(timer);
      timings[key].stopped_at = new Date().toISOString();
      var total = Math.max(0, Math.round((Date.parse(timings[key].stopped_at) - Date.parse(timings[key].started_at)) / 1000));
      timings[key].seconds = total;
      fill(total);
      writeTimings(timings);
      stop.disabled = true;
    });
  });

  /* --- ring counter: +1 per ring, each tap's time kept ----------------------------------- */
  Array.prototype.forEach.call(form.querySelectorAll(".grid-count"), function (box) {
    var key = box.dataset.item;
    var input = box.querySelector("input[type=number]");
    var plus = box.querySelector(".counter-plus");
    plus.hidden = false;
    plus.addEventListener("click", function () {
      input.value = (parseInt(input.value, 10) || 0) + 1;
      var timings = readTimings();
      var entry = timings[key] || {taps: []};
      entry.taps = (entry.taps || []).concat([new Date().toISOString()]);
      timings[key] = entry;
      writeTimings(timings);
      fillVisitedAt();
      checkNudges();
    });
  });

  /* --- working-day delays, as the server counts them ------------------------------------- */
  function iso(d) { return d.getUTCFullYear() + "-" + two(d.getUTCMonth() + 1) + "-" + two(d.getUTCDate()); }
  function workingDays(startText, endText) {
    var start = new Date(startText + "T00:00:00Z"), end = new Date(endText + "T00:00:00Z");
    if (isNaN(start) || isNaN(end) || end < start) { return null; }
    var count = 0;
    for (var d = new Date(start.getTime() + 86400000); d <= end; d = new Date(d.getTime() + 86400000)) {
      var day = d.getUTCDay();
      if (day !== 0 && day !== 6 && !holidays[iso(d)]) { count += 1; }
    }
    return count;
  }
  function updateDelays() {
    Array.prototype.forEach.call(form.querySelectorAll(".delay-value"), function (out) {
      var start = form.querySelector("[name=" + out.dataset.start + "]");
      var end = form.querySelector("[name=" + out.dataset.end + "]");
      if (!start || !start.value) { out.textContent = "–"; return; }
      if (!end || !end.value) { out.textContent = out.dataset.never; return; }
      var days = workingDays(start.value, end.value);
      out.textContent = days === null ? "–" : days + " " + out.dataset.unit;
    });
  }

  /* --- a negative answer asks for a comment ---------------------------------------------- */
  var comment = form.querySelector("textarea");
  function checkNudges() {
    var any = false;
    Array.prototype.forEach.call(form.querySelectorAll(".question"), function (box) {
      var nudge = box.querySelector(".comment-nudge");
      if (!nudge) { return; }
      var failing = !!box.querySelector("input[data-fails]:checked");
      var limit = parseFloat(box.dataset.failAbove);
      if (!isNaN(limit)) {
        var number = box.querySelector("input[type=number]");
        var value = parseInt(number.value, 10) || 0;
        if (box.classList.contains("grid-duration")) {
          value = value * 60 + (parseInt(box.querySelector("[name$=_sec]").value, 10) || 0);
        }
        failing = number.value !== "" && value > limit;
      }
      nudge.hidden = !failing;
      any = any || failing;
    });
    if (comment) { comment.required = any; }
  }

  /* --- sending, and the offline queue ---------------------------------------------------- */
  function readQueue() {
    try { return JSON.parse(localStorage.getItem(QUEUE_KEY) || "[]"); } catch (e) { return []; }
  }
  function writeQueue(queue) { try { localStorage.setItem(QUEUE_KEY, JSON.stringify(queue)); } catch (e) { /* ignore */ } }

  function post(entry) {
    return fetch(entry.url, {
      method: "POST",
      body: entry.body,
      headers: {"Content-Type": "application/x-www-form-urlencoded"},
      credentials: "same-origin",
      redirect: "manual"
    });
  }

  var flushing = false;
  function flushQueue() {
    /* The phone knows it is offline: keep the queue for the "online" event, don't even try. */
    if (flushing || !navigator.onLine) { return Promise.resolve(); }
    var queue = readQueue();
    if (!queue.length) { return Promise.resolve(); }
    flushing = true;
    var entry = queue[0];
    var mine = !!form && entry.url === form.action;
    if (mine) { say(form.dataset.msgSending); }
    return post(entry).then(function (response) {
      flushing = false;
      if (response.status >= 500) { return; }  /* the server is unwell: retried later */
      writeQueue(readQueue().filter(function (e) { return e.id !== entry.id; }));
      if (response.type === "opaqueredirect" || response.ok) {
        if (entry.draftKey) { try { localStorage.removeItem(entry.draftKey); } catch (e) { /* ignore */ } }
        if (mine) { say(form.dataset.msgSent); window.location.assign(form.dataset.done); return; }
      } else if (response.status === 409) {
        if (mine) { say(form.dataset.msgConflict); }
      } else if (mine) {
        say(form.dataset.msgInvalid);
        HTMLFormElement.prototype.submit.call(form);  /* the server shows what to fix */
        return;
      }
      return flushQueue();
    }, function () {
      flushing = false;  /* still offline: keep it for later */
      if (mine) { say(form.dataset.msgQueued); }
    });
  }

  form.addEventListener("submit", function (event) {
    event.preventDefault();
    checkNudges();
    if (!form.checkValidity()) {
      say(form.dataset.msgRequired);
      form.reportValidity();
      return;
    }
    fillVisitedAt();
    var local = form.querySelector("[name=visited_at]");
    saveDraft();
    var body = new URLSearchParams(new FormData(form)).toString();
    var queue = readQueue().filter(function (e) { return e.url !== form.action; });
    queue.push({id: form.elements.visit_id.value, url: form.action, body: body, draftKey: draftKey, at: local ? local.value : ""});
    writeQueue(queue);
    say(navigator.onLine ? form.dataset.msgSending : form.dataset.msgQueued);
    flushQueue();
  });

  form.addEventListener("input", function () { saveDraft(); updateDelays(); checkNudges(); });
  form.addEventListener("change", function () { saveDraft(); updateDelays(); checkNudges(); });
  window.addEventListener("online", function () { flushQueue(); });
  setInterval(function () { if (navigator.onLine) { flushQueue(); } }, 15000);

  restoreDraft();
  updateDelays();
  checkNudges();
  if (readQueue().some(function (e) { return e.url === form.action; })) {
    say(form.dataset.msgQueued);
    if (navigator.onLine) { flushQueue(); }
  }

  /* --- keep this mission usable offline -------------------------------------------------- */
  if ("serviceWorker" in navigator && form.dataset.sw) {
    navigator.serviceWorker.register(form.dataset.sw, {scope: "/me/"}).then(function () {
      return navigator.serviceWorker.ready;
    }).then(function (registration) {
      if (registration.active) {
        registration.active.postMessage({cache: [window.location.pathname, form.dataset.offline]});
      }
    }).catch(function () { /* no offline copy: the page still works online */ });
  }
}());
