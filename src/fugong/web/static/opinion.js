// Keyboard labelling on /opinion/label: 1 negative, 2 neutral, 3 positive, S skip.
// Plain buttons still work without this file (and on a phone).
(function () {
  "use strict";
  var form = document.getElementById("label-form");
  if (!form) return;
  document.addEventListener("keydown", function (ev) {
    if (ev.ctrlKey || ev.metaKey || ev.altKey) return;
    var t = ev.target;
    if (t && (t.tagName === "INPUT" || t.tagName === "TEXTAREA" || t.tagName === "SELECT")) return;
    var key = (ev.key || "").toLowerCase();
    var el = form.querySelector('[data-key="' + key + '"]');
    if (!el) return;
    ev.preventDefault();
    el.click();
  });
})();
