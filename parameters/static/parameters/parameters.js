// Parameter Store pages. htmx swaps only 2xx answers: a card marked data-show-refusal shows a
// 403 (a reveal or a diff refused) in place instead of doing nothing. The KMS key field shows
// only while the type is SecureString.
(function () {
  "use strict";
  function refusalShownInPlace(event) {
    const source = event.target;
    return event.detail.xhr.status === 403 && source instanceof Element &&
      source.closest("[data-show-refusal]") !== null;
  }
  // Capturing, so that django-htmx's debug handler (which shows error answers as whole pages)
  // leaves these refusals alone.
  document.addEventListener("htmx:beforeOnLoad", function (event) {
    if (refusalShownInPlace(event)) event.stopPropagation();
  }, true);
  document.addEventListener("htmx:beforeSwap", function (event) {
    if (refusalShownInPlace(event)) {
      event.detail.shouldSwap = true;
      event.detail.isError = false;
    }
  });

  function showSecureFields() {
    const type = document.querySelector("[data-parameter-type]");
    if (!type) return;
    document.querySelectorAll("[data-secure-only]").forEach(function (field) {
      field.classList.toggle("d-none", type.value !== "SecureString");
    });
  }
  document.addEventListener("change", function (event) {
    if (event.target.matches("[data-parameter-type]")) showSecureFields();
  });
  showSecureFields();
})();
