// Run Command pages. Output refreshed every second keeps the reader's place: a <pre> scrolled
// to its end follows new output, one scrolled elsewhere stays where it was. A document editor
// with an error on a line puts the cursor on that line.
(function () {
  "use strict";
  const kept = {};
  document.addEventListener("htmx:beforeSwap", function () {
    document.querySelectorAll("pre[data-follow][id]").forEach(function (pre) {
      kept[pre.id] = {
        top: pre.scrollTop,
        atEnd: pre.scrollTop + pre.clientHeight >= pre.scrollHeight - 4,
      };
    });
  });
  document.addEventListener("htmx:afterSettle", function () {
    document.querySelectorAll("pre[data-follow][id]").forEach(function (pre) {
      const place = kept[pre.id];
      if (!place) return;
      pre.scrollTop = place.atEnd ? pre.scrollHeight : place.top;
    });
  });

  const editor = document.querySelector("textarea[data-error-line]");
  if (editor) {
    const line = parseInt(editor.dataset.errorLine, 10);
    const lines = editor.value.split("\n");
    if (line >= 1 && line <= lines.length) {
      const start = lines.slice(0, line - 1).join("\n").length + (line > 1 ? 1 : 0);
      editor.focus();
      editor.setSelectionRange(start, start + lines[line - 1].length);
      const lineHeight = parseFloat(getComputedStyle(editor).lineHeight) || 20;
      editor.scrollTop = Math.max(0, (line - 4) * lineHeight);
    }
  }
})();
