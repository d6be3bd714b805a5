// Member portal: a confirm button is pressed once (the server is idempotent anyway).
(function () {
  "use strict";
  document.addEventListener("submit", function (e) {
    var b = e.target.querySelector ? e.target.querySelector("[data-once]") : null;
    if (b) {
      if (b.getAttribute("data-sent")) { e.preventDefault(); return; }
      b.setAttribute("data-sent", "1");
      b.setAttribute("aria-busy", "true");
    }
  });
})();
