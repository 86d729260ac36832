// The live event feed. One websocket per tab to /ws/events/; each event is re-dispatched on
// <body> as a DOM event "bosun:<name>" with its data as `detail`, so pages react with plain
// htmx triggers, e.g. hx-trigger="bosun:worker_heartbeat from:body". Reconnects with jittered
// exponential backoff so a server restart is not a thundering herd.
(function () {
  "use strict";
  const badge = document.getElementById("live-status");
  const CLOSE_UNAUTHENTICATED = 4401;
  const CLOSE_FORBIDDEN = 4403;
  let attempt = 0;

  function show(state, label) {
    if (!badge) return;
    badge.className = "badge " + { live: "text-bg-success", down: "text-bg-warning", off: "text-bg-secondary" }[state];
    badge.querySelector(".live-label").textContent = label;
    badge.dataset.state = state;
  }

  function connect() {
    const scheme = window.location.protocol === "https:" ? "wss:" : "ws:";
    const socket = new WebSocket(scheme + "//" + window.location.host + "/ws/events/");
    socket.addEventListener("open", function () { attempt = 0; show("live", "live"); });
    socket.addEventListener("message", function (message) {
      let payload;
      try { payload = JSON.parse(message.data); } catch (error) { return; }
      document.body.dispatchEvent(new CustomEvent("bosun:" + payload.event, { detail: payload.data, bubbles: true }));
    });
    socket.addEventListener("close", function (event) {
      if (event.code === CLOSE_UNAUTHENTICATED) { show("off", "signed out"); return; }
      if (event.code === CLOSE_FORBIDDEN) { show("off", "not allowed"); return; }
      attempt += 1;
      const delay = Math.min(30000, 500 * Math.pow(2, attempt)) * (0.5 + Math.random() / 2);
      show("down", "reconnecting…");
      window.setTimeout(connect, delay);
    });
  }

  connect();
})();
