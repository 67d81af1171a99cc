/* StepUp portal: the little behaviour the pages need (CSP: no inline scripts).
   Every feature is progressive: the pages work without JavaScript. */
(function () {
  "use strict";

  function codesText(list) {
    var lines = [];
    var title = list.getAttribute("data-title");
    if (title) { lines.push(title, ""); }
    list.querySelectorAll("code").forEach(function (el, i) {
      lines.push((i + 1) + ". " + el.textContent.trim());
    });
    var note = list.getAttribute("data-note");
    if (note) { lines.push("", note); }
    return lines.join("\r\n") + "\r\n";
  }

  function download(button) {
    var list = document.getElementById(button.getAttribute("data-target"));
    if (!list) { return; }
    var blob = new Blob([codesText(list)], { type: "text/plain;charset=utf-8" });
    var url = URL.createObjectURL(blob);
    var a = document.createElement("a");
    a.href = url;
    a.download = button.getAttribute("data-filename") || "backup-codes.txt";
    document.body.appendChild(a);
    a.click();
    a.remove();
    setTimeout(function () { URL.revokeObjectURL(url); }, 1000);
  }

  function copy(button) {
    var source = document.getElementById(button.getAttribute("data-copy"));
    if (!source || !navigator.clipboard) { return; }
    var text = source.textContent.replace(/\s+/g, "");
    navigator.clipboard.writeText(text).then(function () {
      var label = button.textContent;
      button.textContent = button.getAttribute("data-copied") || label;
      setTimeout(function () { button.textContent = label; }, 2000);
    }, function () { /* clipboard refused: the key stays visible to copy by hand */ });
  }

  // "Resend code": disabled with a visible m:ss countdown until another code may be sent.
  // The server enforces the same wait (and says so) for a browser without JavaScript.
  function countdown(button) {
    var seconds = parseInt(button.getAttribute("data-countdown"), 10);
    if (!(seconds > 0)) { return; }
    var label = button.textContent.trim();
    var template = button.getAttribute("data-countdown-label") || label + " ({time})";
    var deadline = Date.now() + seconds * 1000;
    var timer = null;
    var tick = function () {
      var left = Math.ceil((deadline - Date.now()) / 1000);
      if (left <= 0) {
        if (timer !== null) { clearInterval(timer); }
        button.disabled = false;
        button.textContent = label;
        return;
      }
      var s = left % 60;
      button.disabled = true;
      button.textContent = template.replace("{time}",
        Math.floor(left / 60) + ":" + (s < 10 ? "0" : "") + s);
    };
    tick();
    timer = setInterval(tick, 250);
  }

  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll("[data-countdown]").forEach(countdown);
    document.querySelectorAll("[data-js-only]").forEach(function (el) {
      el.hidden = false;
    });
    document.querySelectorAll("[data-copy]").forEach(function (el) {
      if (navigator.clipboard) { el.hidden = false; }
      el.addEventListener("click", function () { copy(el); });
    });
    document.querySelectorAll("[data-action=print]").forEach(function (el) {
      el.addEventListener("click", function () { window.print(); });
    });
    document.querySelectorAll("[data-action=download]").forEach(function (el) {
      el.addEventListener("click", function () { download(el); });
    });
    // "I have saved them" enables Finish; the checkbox is also `required`, so the form
    // cannot be sent unticked even without JavaScript.
    document.querySelectorAll("[data-enables]").forEach(function (box) {
      var target = document.getElementById(box.getAttribute("data-enables"));
      if (!target) { return; }
      var sync = function () { target.disabled = !box.checked; };
      box.addEventListener("change", sync);
      sync();
    });
  });
})();
