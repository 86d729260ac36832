// Playback of a session's recording (asciicast v2, fetched from its .cast download) in an
// xterm.js terminal: play/pause, speed, and a seek bar. Output ("o") is written as its time
// comes, resizes ("r") resize the terminal, input ("i") and markers are not shown. Seeking
// resets the terminal and writes everything up to the point at once, which is quick since a
// terminal only has to draw the end state.
(function () {
  "use strict";

  const element = document.getElementById("player");
  if (!element || !window.Terminal) return;
  const screen = document.getElementById("player-screen");
  const toggle = document.getElementById("player-toggle");
  const speedSelect = document.getElementById("player-speed");
  const seekBar = document.getElementById("player-seek");
  const clock = document.getElementById("player-time");
  const note = document.getElementById("player-message");

  let width = parseInt(element.dataset.width, 10) || 80;
  let height = parseInt(element.dataset.height, 10) || 24;
  const term = new window.Terminal({
    cols: width,
    rows: height,
    disableStdin: true,
    cursorBlink: false,
    scrollback: 10000,
    fontFamily: 'ui-monospace, "DejaVu Sans Mono", "Liberation Mono", Menlo, Consolas, monospace',
    fontSize: 14,
    theme: { background: "#1e1e1e" },
  });
  term.open(screen);

  let events = []; // [time, code, data] of output and resizes, in order
  let total = 0; // seconds: the time of the last event of any kind
  let next = 0; // index of the next event to apply
  let position = 0; // seconds into the recording shown now
  let playing = false;
  let speed = parseFloat(speedSelect.value) || 1;
  let wallStart = 0; // performance.now() when playing (re)started
  let positionStart = 0; // the position then
  let frame = null;
  let dragging = false;

  function setState(state) {
    element.dataset.state = state;
    toggle.innerHTML =
      state === "playing"
        ? '<i class="bi bi-pause-fill"></i> Pause'
        : state === "ended"
          ? '<i class="bi bi-arrow-counterclockwise"></i> Replay'
          : '<i class="bi bi-play-fill"></i> Play';
    toggle.setAttribute("aria-pressed", state === "playing" ? "true" : "false");
  }

  function formatTime(seconds) {
    const whole = Math.max(0, Math.floor(seconds));
    const h = Math.floor(whole / 3600);
    const m = Math.floor((whole % 3600) / 60);
    const s = String(whole % 60).padStart(2, "0");
    return h ? h + ":" + String(m).padStart(2, "0") + ":" + s : m + ":" + s;
  }

  function showPosition() {
    element.dataset.position = position.toFixed(3);
    clock.textContent = formatTime(position) + " / " + formatTime(total);
    if (!dragging) seekBar.value = String(position);
  }

  // xterm.js parses writes later, in order; resizing and resetting at once would overtake
  // output still queued. Both go through the queue instead: a resize in a write's callback,
  // a reset as the RIS sequence (ESC c).
  function resizeInTurn(cols, rows) {
    term.write("", function () { term.resize(cols, rows); });
  }

  // Apply every event up to `until` seconds: output gathered into one write, flushed before
  // each resize so text lands on the terminal size it was written for.
  function applyUntil(until) {
    let text = "";
    while (next < events.length && events[next][0] <= until) {
      const event = events[next];
      if (event[1] === "o") {
        text += event[2];
      } else {
        if (text) term.write(text);
        text = "";
        const size = /^(\d+)x(\d+)$/.exec(event[2]);
        if (size) resizeInTurn(parseInt(size[1], 10), parseInt(size[2], 10));
      }
      next += 1;
    }
    if (text) term.write(text);
  }

  function tick(now) {
    frame = null;
    if (!playing) return;
    position = Math.min(total, positionStart + ((now - wallStart) / 1000) * speed);
    applyUntil(position);
    showPosition();
    if (position >= total) {
      playing = false;
      setState("ended");
      return;
    }
    frame = window.requestAnimationFrame(tick);
  }

  function play() {
    if (!events.length && !total) return;
    if (position >= total) seek(0);
    playing = true;
    wallStart = performance.now();
    positionStart = position;
    setState("playing");
    if (frame === null) frame = window.requestAnimationFrame(tick);
  }

  function pause() {
    playing = false;
    if (frame !== null) window.cancelAnimationFrame(frame);
    frame = null;
    setState(position >= total ? "ended" : "paused");
  }

  function seek(target) {
    const to = Math.max(0, Math.min(total, target));
    term.write("\x1bc");
    resizeInTurn(width, height);
    next = 0;
    applyUntil(to);
    position = to;
    wallStart = performance.now();
    positionStart = to;
    showPosition();
    if (!playing) setState(position >= total && total > 0 ? "ended" : "paused");
  }

  function parse(text) {
    const lines = text.split("\n");
    const header = JSON.parse(lines[0]);
    if (header.version !== 2) throw new Error("not an asciicast v2 recording");
    width = parseInt(header.width, 10) || width;
    height = parseInt(header.height, 10) || height;
    const parsed = [];
    let last = 0;
    for (let i = 1; i < lines.length; i += 1) {
      if (!lines[i]) continue;
      const event = JSON.parse(lines[i]);
      last = Math.max(last, Number(event[0]) || 0);
      // Input is what was typed; the output already shows what the shell made of it.
      if (event[1] === "o" || event[1] === "r") parsed.push(event);
    }
    events = parsed;
    total = last;
  }

  toggle.addEventListener("click", function () {
    if (playing) pause();
    else play();
  });
  speedSelect.addEventListener("change", function () {
    speed = parseFloat(speedSelect.value) || 1;
    wallStart = performance.now();
    positionStart = position;
  });
  seekBar.addEventListener("input", function () {
    dragging = true;
    seek(parseFloat(seekBar.value) || 0);
  });
  seekBar.addEventListener("change", function () {
    dragging = false;
    seek(parseFloat(seekBar.value) || 0);
  });
  element.addEventListener("keydown", function (event) {
    if (event.key === " " && event.target.tagName !== "SELECT" && event.target.tagName !== "INPUT") {
      event.preventDefault();
      toggle.click();
    }
  });

  setState("loading");
  fetch(element.dataset.castUrl, { credentials: "same-origin" })
    .then(function (response) {
      if (!response.ok) {
        return response.text().then(function (body) {
          throw new Error(body || "the recording could not be fetched (" + response.status + ")");
        });
      }
      return response.text();
    })
    .then(function (text) {
      parse(text);
      term.resize(width, height);
      seekBar.max = String(total);
      seekBar.step = "any";
      seekBar.disabled = false;
      toggle.disabled = false;
      speedSelect.disabled = false;
      note.textContent = events.length ? "" : "The recording holds no output.";
      showPosition();
      setState("paused");
      play();
    })
    .catch(function (error) {
      setState("error");
      note.textContent = "Cannot play this recording: " + error.message;
      note.classList.add("text-danger");
    });

  window.bosunPlayer = {
    term: term,
    play: play,
    pause: pause,
    seek: seek,
    state: function () {
      return { state: element.dataset.state, position: position, total: total, speed: speed };
    },
  };
})();
