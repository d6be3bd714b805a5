// Cashier page: scan the member's QR code with the camera where the browser can
// (BarcodeDetector); without it the find box takes what a scanner types. Progressive only.
(function () {
  "use strict";
  if (!("BarcodeDetector" in window) || !navigator.mediaDevices) { return; }
  document.querySelectorAll("[data-pos-find]").forEach(function (form) {
    var start = form.querySelector("[data-scan]");
    var box = form.querySelector("[data-camera]");
    var video = box && box.querySelector("video");
    var stopBtn = box && box.querySelector("[data-scan-stop]");
    var input = form.querySelector("input[name=find]");
    if (!start || !box || !video || !input) { return; }
    var stream = null;
    var detector = null;
    try { detector = new window.BarcodeDetector({ formats: ["qr_code"] }); } catch (e) { return; }
    start.hidden = false;
    function stop() {
      if (stream) { stream.getTracks().forEach(function (t) { t.stop(); }); }
      stream = null;
      box.hidden = true;
    }
    function tick() {
      if (!stream) { return; }
      detector.detect(video).then(function (codes) {
        if (codes && codes.length && codes[0].rawValue) {
          input.value = codes[0].rawValue;
          stop();
          form.submit();
        } else {
          window.requestAnimationFrame(tick);
        }
      }).catch(function () { window.setTimeout(tick, 300); });
    }
    start.addEventListener("click", function () {
      navigator.mediaDevices.getUserMedia({ video: { facingMode: "environment" } }).then(function (s) {
        stream = s;
        video.srcObject = s;
        box.hidden = false;
        video.play();
        tick();
      }).catch(function () { start.hidden = true; });
    });
    if (stopBtn) { stopBtn.addEventListener("click", stop); }
  });
})();
