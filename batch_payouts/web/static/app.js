// batch-payouts web: drag and drop on the upload page, live progress on the batch page.
// Every page works without this file; it only saves clicks and reloads.
(function () {
  "use strict";

  function setupDrop() {
    var zone = document.getElementById("drop-zone");
    var input = document.getElementById("file");
    var label = document.getElementById("file-name");
    if (!zone || !input) return;
    function show() { label.textContent = input.files.length ? input.files[0].name : ""; }
    input.addEventListener("change", show);
    ["dragenter", "dragover"].forEach(function (name) {
      zone.addEventListener(name, function (event) { event.preventDefault(); zone.classList.add("over"); });
    });
    ["dragleave", "drop"].forEach(function (name) {
      zone.addEventListener(name, function (event) { event.preventDefault(); zone.classList.remove("over"); });
    });
    zone.addEventListener("drop", function (event) {
      if (event.dataTransfer && event.dataTransfer.files.length) {
        input.files = event.dataTransfer.files;
        show();
      }
    });
  }

  function setupUploadBusy() {
    // The review of a large file takes seconds: say so, and keep a second click from uploading it twice.
    var form = document.getElementById("upload-form");
    var busy = document.getElementById("upload-busy");
    var button = document.getElementById("upload-button");
    if (!form || !busy || !button) return;
    form.addEventListener("submit", function () {
      busy.hidden = false;
      window.setTimeout(function () { button.disabled = true; }, 0);  // after the browser has taken the submission
    });
    window.addEventListener("pageshow", function () {  // back from the review (page cache): ready again
      busy.hidden = true;
      button.disabled = false;
    });
  }

  function watchOrders(box) {
    // After the run, while references are still open: Conekta's webhooks (or `status`) change rows at
    // any time. Ask every few seconds whether anything changed and reload only then, so the chart and
    // the per-row statuses follow without a manual reload (nothing asked while the tab is hidden).
    if (box.dataset.watch !== "yes") return;
    function look() {
      if (document.hidden) { window.setTimeout(look, 3000); return; }
      fetch(box.dataset.url + "?watch=1", { headers: { "Accept": "application/json" }, credentials: "same-origin" })
        .then(function (response) {
          if (response.redirected) { window.location.reload(); return null; }  // signed out (idle): show it
          return response.json();
        })
        .then(function (data) {
          if (data === null) return;
          if (data.running || (data.orders && data.orders !== box.dataset.orders)) {
            window.location.reload();
          } else {
            window.setTimeout(look, 3000);
          }
        })
        .catch(function () { window.setTimeout(look, 15000); });
    }
    window.setTimeout(look, 3000);
  }

  function setupProgress() {
    var box = document.getElementById("progress");
    if (!box) return;
    if (box.dataset.running !== "yes") { watchOrders(box); return; }
    var bar = document.getElementById("progress-bar");
    // Counts as the page writes them: with thousands separators ("12,480").
    function text(id, value) { var node = document.getElementById(id); if (node) node.textContent = Number(value || 0).toLocaleString("en-US"); }
    function poll() {
      fetch(box.dataset.url, { headers: { "Accept": "application/json" }, credentials: "same-origin" })
        .then(function (response) { return response.json(); })
        .then(function (data) {
          bar.max = data.total || 1;
          bar.value = data.done;
          text("created", data.created);
          text("failed", data.failed);
          text("pending", data.pending);
          text("unconfirmed", data.unconfirmed);
          var explained = document.getElementById("unconfirmed-explained");
          if (explained) explained.hidden = !data.unconfirmed;  // may exist at Conekta: say why it is not "failed"
          if (data.message) {
            var message = document.getElementById("run-message");
            message.textContent = data.message;
            message.hidden = false;
          }
          if (data.running) {
            window.setTimeout(poll, 1000);
          } else {
            window.location.reload();  // the results, links and buttons come with the page
          }
        })
        .catch(function () { window.setTimeout(poll, 3000); });
    }
    poll();
  }

  document.addEventListener("DOMContentLoaded", function () { setupDrop(); setupUploadBusy(); setupProgress(); });
})();
