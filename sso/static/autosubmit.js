// Posts the hand-off and SAML POST-binding forms on load; without scripts, their button does.
"use strict";
document.querySelectorAll("form[data-autosubmit]").forEach(function (form) { form.submit(); });
