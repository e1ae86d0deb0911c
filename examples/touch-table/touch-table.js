/**
 * Clicktrail's touch-table example, after Microticks' own: every tap or click anywhere on the page becomes an event
 * `tap` with the element it hit (tag#id.class) and its coordinates; the session starts with the first tap (the tracker
 * starts sessions lazily) and is stopped after N seconds without a touch, when we assume the visitor has walked away.
 *
 * Configuration on <body> or in the address (which wins): data-key / ?key= (the app's ingest key), data-api / ?api=
 * (the Clicktrail server; by default the one that served /tracker.js), data-idle-seconds / ?idle= (default 60).
 */
(function () {
  "use strict";
  var body = document.body;
  var params = new URLSearchParams(location.search);
  var key = params.get("key") || body.dataset.key;
  var api = params.get("api") || body.dataset.api;
  var idleSeconds = Number(params.get("idle") || body.dataset.idleSeconds) || 60;
  var status = document.getElementById("status");
  var ct = window.clicktrail;
  var taps = 0;
  var timer = 0;

  function show(state, text) {
    body.dataset.state = state;
    status.textContent = text;
  }

  /** tag#id.class.class, as Microticks' example reports its target */
  function describe(el) {
    var s = el.tagName.toLowerCase();
    if (el.id) s += "#" + el.id;
    for (var i = 0; i < el.classList.length; i++) s += "." + el.classList[i];
    return s;
  }

  function ripple(x, y) {
    var r = document.createElement("span");
    r.className = "ripple";
    r.style.left = x + "px";
    r.style.top = y + "px";
    r.addEventListener("animationend", function () {
      r.remove();
    });
    body.appendChild(r);
  }

  document.getElementById("idle-seconds").textContent = String(idleSeconds);
  if (!ct || !key) {
    show("unconfigured", !ct ? "The tracker (/tracker.js) did not load" : "No ingest key: add ?key=… to the address or data-key to <body>");
    return;
  }
  var options = { key: key, idleTimeout: idleSeconds * 1000 };
  if (api) options.api = api;
  ct.init(options);

  // pointerdown: touch, pen and mouse alike, each finger of a multi-touch, at once (no wait for a click)
  document.addEventListener(
    "pointerdown",
    function (e) {
      var el = e.target instanceof Element ? e.target : document.documentElement;
      var x = Math.round(e.pageX);
      var y = Math.round(e.pageY);
      ct.track("tap", { element: describe(el), x: x, y: y, pointer: e.pointerType });
      taps++;
      show("active", taps === 1 ? "1 tap" : taps + " taps");
      ripple(x, y);
      clearTimeout(timer);
      timer = setTimeout(function () {
        // nobody touched the table for a while: the visitor has gone, and so has the session
        ct.stop();
        taps = 0;
        show("ended", "Visit over: touch anywhere to begin");
      }, idleSeconds * 1000);
    },
    { passive: true },
  );
})();
