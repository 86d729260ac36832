// Live fleet pages. realtime.js re-dispatches every node status change as the DOM event
// "bosun:fleet.node_status" with {node_id, status}; the event says only "look now", so each
// element showing that node (data-live-node="<id>", with its own hx-get) refetches itself,
// authorized like any request. Counts (data-live-counts) refetch at most once a second,
// because a sweep can change hundreds of nodes at once.
(function () {
  "use strict";
  const COUNTS_EVERY_MS = 1000;
  let countsDue = null;

  document.body.addEventListener("bosun:fleet.node_status", function (event) {
    const nodeId = event.detail && event.detail.node_id;
    if (!nodeId || !window.htmx) return;
    document.querySelectorAll("[data-live-node]").forEach(function (element) {
      if (element.dataset.liveNode === nodeId) window.htmx.trigger(element, "fleet:refresh");
    });
    if (countsDue === null && document.querySelector("[data-live-counts]")) {
      countsDue = window.setTimeout(function () {
        countsDue = null;
        const counts = document.querySelector("[data-live-counts]");
        if (counts) window.htmx.trigger(counts, "fleet:refresh");
      }, COUNTS_EVERY_MS);
    }
  });

  // "Select all" in the node list's header ticks every row of this page.
  document.body.addEventListener("change", function (event) {
    if (event.target.id !== "select-all-nodes") return;
    document.querySelectorAll('input[name="node"][form="bulk-form"]').forEach(function (box) {
      box.checked = event.target.checked;
    });
  });
})();
