// Setia console and portal: small progressive enhancements; every page works without them.
(function () {
  "use strict";
  function csrf() {
    var m = document.querySelector('meta[name="csrf-token"]');
    return m ? m.getAttribute("content") : "";
  }
  document.addEventListener("htmx:configRequest", function (e) {
    e.detail.headers["X-CSRF-Token"] = csrf();
  });
  document.addEventListener("change", function (e) {
    var el = e.target;
    if (el && el.hasAttribute && el.hasAttribute("data-autosubmit") && el.form) { el.form.submit(); }
  });
  document.addEventListener("click", function (e) {
    var t = e.target.closest ? e.target.closest("[data-toggle-nav]") : null;
    if (t) {
      var nav = document.getElementById("sidenav");
      if (nav) {
        var open = nav.classList.toggle("open");
        t.setAttribute("aria-expanded", open ? "true" : "false");
      }
    }
    var c = e.target.closest ? e.target.closest("[data-confirm]") : null;
    if (c && !window.confirm(c.getAttribute("data-confirm"))) { e.preventDefault(); }
  });
  document.addEventListener("click", function (e) {
    var b = e.target.closest ? e.target.closest("[data-copy]") : null;
    if (b && navigator.clipboard) {
      navigator.clipboard.writeText(b.getAttribute("data-copy"));
      b.setAttribute("data-copied", "1");
    }
  });
})();
