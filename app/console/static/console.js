// The console's only script of its own (the CSP allows no inline scripts): copy buttons.
"use strict";
document.addEventListener("click", function (event) {
  const button = event.target.closest("[data-copy]");
  if (!button) { return; }
  const field = document.getElementById(button.getAttribute("data-copy"));
  if (!field) { return; }
  field.select();
  const done = function () { button.textContent = "Copied"; };
  if (navigator.clipboard && window.isSecureContext) {
    navigator.clipboard.writeText(field.value).then(done, function () { document.execCommand("copy"); done(); });
  } else {
    document.execCommand("copy");
    done();
  }
});
