// The live terminal of a session: xterm.js on the browser's session websocket.
//
// Output arrives as binary frames, an 8-byte big-endian offset (bytes since the session
// began) and the bytes. The terminal acknowledges what xterm.js has rendered (its write
// callbacks), and the relay gives the agent more credit only as acks come: a flood never
// piles up in the browser. A dropped socket reconnects with ?resume=<the offset received so
// far>, so the shell goes on and nothing is missed or shown twice.
(function () {
  "use strict";

  const RECONNECT_FIRST_MS = 500;
  const RECONNECT_MAX_MS = 8000;
  const INPUT_FRAME_MAX = 64 * 1024; // the relay closes larger frames with 1009
  const ACK_EVERY = 32 * 1024; // during a flood, ack at least this often
  const CLOSE_FORBIDDEN = 4403;
  const CLOSE_ENDED = 4410;
  const BADGES = {
    connecting: "text-bg-info",
    connected: "text-bg-success",
    reconnecting: "text-bg-warning",
    terminating: "text-bg-warning",
    ended: "text-bg-secondary",
    refused: "text-bg-danger",
  };

  const element = document.getElementById("terminal");
  if (!element || !window.Terminal || !window.FitAddon) return;
  const badge = document.getElementById("terminal-status");
  const note = document.getElementById("terminal-message");
  const terminateForm = document.getElementById("terminate-form");
  const playback = document.getElementById("terminal-playback");

  const term = new window.Terminal({
    cursorBlink: true,
    scrollback: 10000,
    fontFamily: 'ui-monospace, "DejaVu Sans Mono", "Liberation Mono", Menlo, Consolas, monospace',
    fontSize: 14,
    theme: { background: "#1e1e1e" },
  });
  const fit = new window.FitAddon.FitAddon();
  term.loadAddon(fit);
  term.open(element);
  fit.fit();
  term.focus();

  const encoder = new TextEncoder();
  let socket = null;
  let received = 0; // the offset after the last byte received: where a resume starts
  let rendered = 0; // the offset xterm.js has rendered up to
  let acked = 0;
  let writing = 0; // writes handed to xterm.js and not yet rendered
  let retryDelay = RECONNECT_FIRST_MS;
  let retryTimer = null;
  let finished = false; // ended or refused: no more reconnecting

  function show(state, label, message) {
    badge.className = "badge " + (BADGES[state] || "text-bg-secondary");
    badge.textContent = label;
    badge.dataset.state = state;
    element.dataset.state = state;
    if (message !== undefined) note.textContent = message;
  }

  function socketUrl() {
    const scheme = window.location.protocol === "https:" ? "wss:" : "ws:";
    return scheme + "//" + window.location.host + element.dataset.socket + "?resume=" + received;
  }

  function sendJson(message) {
    if (!socket || socket.readyState !== WebSocket.OPEN) return false;
    socket.send(JSON.stringify(message));
    return true;
  }

  function sendInput(bytes) {
    if (!socket || socket.readyState !== WebSocket.OPEN) {
      if (!finished) note.textContent = "Not connected: what you typed was not sent.";
      return;
    }
    for (let start = 0; start < bytes.length; start += INPUT_FRAME_MAX) {
      socket.send(bytes.subarray(start, start + INPUT_FRAME_MAX));
    }
  }

  function sendResize() {
    sendJson({ type: "resize", cols: term.cols, rows: term.rows });
  }

  function ack() {
    if (rendered <= acked) return;
    if (writing === 0 || rendered - acked >= ACK_EVERY) {
      if (sendJson({ type: "ack", offset: rendered })) acked = rendered;
    }
  }

  function onOutput(buffer) {
    if (buffer.byteLength < 8) return;
    const offset = Number(new DataView(buffer).getBigUint64(0));
    let bytes = new Uint8Array(buffer, 8);
    if (offset < received) {
      // A resume may repeat the end of what arrived before the drop.
      const seen = received - offset;
      if (seen >= bytes.length) return;
      bytes = bytes.subarray(seen);
    }
    const end = Math.max(offset, received) + bytes.length;
    received = end;
    writing += 1;
    term.write(bytes, function () {
      writing -= 1;
      rendered = Math.max(rendered, end);
      ack();
    });
  }

  function ended(message) {
    finished = true;
    show("ended", "Ended", message || "The session has ended.");
    term.options.cursorBlink = false;
    if (terminateForm) terminateForm.classList.add("d-none");
    if (playback) playback.classList.remove("d-none");
  }

  function onControl(text) {
    let message;
    try {
      message = JSON.parse(text);
    } catch (error) {
      return;
    }
    if (message.type === "status") {
      const status = String(message.status || "");
      const state = status === "Connected" ? "connected" : status.toLowerCase() || "connecting";
      show(state, status || "…", message.message || "");
    } else if (message.type === "ended") {
      const reason = message.reason ? "The session has ended: " + message.reason + "." : "";
      ended(reason);
    } else if (message.type === "error") {
      note.textContent = message.message || "The server refused a message.";
    }
  }

  function onClosed(event) {
    if (event.code === CLOSE_FORBIDDEN) {
      finished = true;
      show("refused", "Refused", "Only whoever started this session may attach to its terminal.");
      return;
    }
    if (event.code === CLOSE_ENDED || finished) {
      if (badge.dataset.state !== "ended") ended(event.reason || "");
      return;
    }
    const seconds = (retryDelay / 1000).toFixed(1);
    show(
      "reconnecting",
      "Reconnecting…",
      "The connection dropped (" + event.code + "); the shell keeps running. Retrying in " +
        seconds + " s.",
    );
    retryTimer = window.setTimeout(connect, retryDelay);
    retryDelay = Math.min(retryDelay * 2, RECONNECT_MAX_MS);
  }

  function connect() {
    retryTimer = null;
    const ws = new WebSocket(socketUrl());
    ws.binaryType = "arraybuffer";
    socket = ws;
    ws.onopen = function () {
      if (socket !== ws) return;
      retryDelay = RECONNECT_FIRST_MS;
      if (badge.dataset.state === "reconnecting") show("connecting", "Resuming…", "");
      sendResize();
      if (rendered > acked && sendJson({ type: "ack", offset: rendered })) acked = rendered;
    };
    ws.onmessage = function (event) {
      if (socket !== ws) return;
      if (typeof event.data === "string") onControl(event.data);
      else onOutput(event.data);
    };
    ws.onclose = function (event) {
      if (socket !== ws) return;
      socket = null;
      onClosed(event);
    };
  }

  term.onData(function (data) {
    sendInput(encoder.encode(data));
  });
  term.onBinary(function (data) {
    sendInput(Uint8Array.from(data, function (c) { return c.charCodeAt(0) & 0xff; }));
  });
  term.onResize(sendResize);
  // Ctrl+Shift+C copies the selection (Ctrl+C belongs to the shell); pasting is the browser's.
  term.attachCustomKeyEventHandler(function (event) {
    if (event.type === "keydown" && event.ctrlKey && event.shiftKey && event.code === "KeyC") {
      const selection = term.getSelection();
      if (selection && navigator.clipboard) navigator.clipboard.writeText(selection);
      return false;
    }
    return true;
  });

  let fitTimer = null;
  window.addEventListener("resize", function () {
    window.clearTimeout(fitTimer);
    fitTimer = window.setTimeout(function () { fit.fit(); }, 100);
  });
  window.addEventListener("online", function () {
    if (retryTimer !== null) {
      window.clearTimeout(retryTimer);
      connect();
    }
  });

  if (terminateForm) {
    terminateForm.addEventListener("submit", function (event) {
      if (!window.confirm("Terminate this session? The shell and everything it started end now.")) {
        event.preventDefault();
        return;
      }
      // Over the socket when it is open; else the form posts, which works without it.
      if (sendJson({ type: "terminate" })) {
        event.preventDefault();
        show("terminating", "Terminating…", "");
      }
    });
  }

  // For tests and the curious: the terminal and how far the stream has got.
  window.bosunTerminal = {
    term: term,
    offsets: function () { return { received: received, rendered: rendered, acked: acked }; },
    // Closes the socket as a network drop would (the reconnect follows).
    drop: function () { if (socket) socket.close(3000, "dropped"); },
  };

  show("connecting", "Connecting…", "");
  connect();
})();
