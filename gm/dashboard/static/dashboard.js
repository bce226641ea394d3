// Sedna dashboard: live updates without reloading the page.
// The page's <body data-stream="..."> names its event stream (Server-Sent Events, same origin, the
// session cookie authenticates it). Each "region" event carries {id, html}: the server-rendered
// new content of the element with that id. No eval, no inline script: the CSP allows only this file.
(function () {
  "use strict";
  var url = document.body.dataset.stream;
  var badge = document.getElementById("live");
  function show(state, text) {
    if (badge) { badge.className = "live " + state; badge.textContent = text; }
  }
  if (!url || !window.EventSource) { show("off", "static"); return; }
  var source = new EventSource(url);
  source.addEventListener("open", function () { show("on", "live"); });
  source.addEventListener("error", function () {
    show("off", source.readyState === EventSource.CLOSED ? "disconnected" : "reconnecting");
  });
  source.addEventListener("region", function (event) {
    var message = JSON.parse(event.data);
    var target = document.getElementById(message.id);
    if (target) {
      target.innerHTML = message.html;
      target.dataset.updated = String(Date.now());
    }
  });
  source.addEventListener("login", function () {
    source.close();
    window.location.assign(document.body.dataset.login || window.location.href);
  });
})();
