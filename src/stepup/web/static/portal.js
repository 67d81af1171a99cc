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

  // Passkeys (WebAuthn). A form holding an <input data-passkey="create|get"> carries the
  // server's options in data-options (base64url fields, as py_webauthn writes them). On
  // submit the browser makes or uses the passkey, the credential goes into the input as
  // JSON (the same JSON the API takes as `code`), and the form is sent.
  function fromB64url(text) {
    var b64 = text.replace(/-/g, "+").replace(/_/g, "/");
    while (b64.length % 4) { b64 += "="; }
    var raw = atob(b64);
    var bytes = new Uint8Array(raw.length);
    for (var i = 0; i < raw.length; i++) { bytes[i] = raw.charCodeAt(i); }
    return bytes.buffer;
  }

  function toB64url(buffer) {
    var bytes = new Uint8Array(buffer);
    var raw = "";
    for (var i = 0; i < bytes.length; i++) { raw += String.fromCharCode(bytes[i]); }
    return btoa(raw).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  }

  function publicKeyOptions(options) {
    var o = JSON.parse(JSON.stringify(options));
    o.challenge = fromB64url(o.challenge);
    if (o.user) { o.user.id = fromB64url(o.user.id); }
    ["excludeCredentials", "allowCredentials"].forEach(function (key) {
      (o[key] || []).forEach(function (c) { c.id = fromB64url(c.id); });
    });
    return o;
  }

  function credentialJSON(cred) {
    var r = cred.response;
    var response = { clientDataJSON: toB64url(r.clientDataJSON) };
    if (r.attestationObject) {
      response.attestationObject = toB64url(r.attestationObject);
      response.transports = r.getTransports ? r.getTransports() : [];
    } else {
      response.authenticatorData = toB64url(r.authenticatorData);
      response.signature = toB64url(r.signature);
      response.userHandle = r.userHandle ? toB64url(r.userHandle) : null;
    }
    return JSON.stringify({
      id: cred.id, rawId: toB64url(cred.rawId), type: cred.type, response: response,
      clientExtensionResults: cred.getClientExtensionResults(),
      authenticatorAttachment: cred.authenticatorAttachment || null
    });
  }

  function passkey(input) {
    var form = input.form;
    var failure = form.querySelector("[data-passkey-error]");
    if (!window.PublicKeyCredential) {
      if (failure) { failure.hidden = false; failure.textContent = failure.getAttribute("data-unsupported"); }
      form.querySelectorAll("button[type=submit]").forEach(function (b) { b.disabled = true; });
      return;
    }
    var raw = JSON.parse(input.getAttribute("data-options"));
    var site = raw.rpId || (raw.rp && raw.rp.id) || location.hostname;
    var host = location.hostname;
    if (host !== site && host.slice(-(site.length + 1)) !== "." + site) {
      // The browser would refuse: a passkey belongs to its site (PUBLIC_URL's host).
      if (failure) {
        failure.hidden = false;
        failure.textContent = failure.getAttribute("data-wrong-site").replace("{site}", site);
      }
      form.querySelectorAll("button[type=submit]").forEach(function (b) { b.disabled = true; });
      return;
    }
    form.addEventListener("submit", function (event) {
      if (input.value) { return; }
      event.preventDefault();
      var options = publicKeyOptions(raw);
      var call = input.getAttribute("data-passkey") === "create"
        ? navigator.credentials.create({ publicKey: options })
        : navigator.credentials.get({ publicKey: options });
      call.then(function (cred) {
        input.value = credentialJSON(cred);
        form.submit();
      }, function () {
        if (failure) { failure.hidden = false; }
      });
    });
  }

  // Step 1 of a set-up that sends codes to a phone (form[data-check-number]): the number
  // is checked before the form is sent, so that a refused one is told while the PIN is
  // still in its field, as typed — the server never writes a PIN back into a page. Only
  // the number and the CSRF token go to the check, never the PIN. The reason is shown
  // where the server shows it (#phone-error, in the live region #phone-error-live), with
  // aria-invalid and aria-describedby as the server sets them, and the focus goes back
  // to the number. Any other answer (accepted, a refusal of the check itself, no
  // network) sends the form as it is, and the server checks everything again.
  function checkNumber(form) {
    var url = form.getAttribute("data-check-number");
    var input = form.querySelector("input[name=phone]");
    var token = form.querySelector("input[name=csrf_token]");
    var live = document.getElementById("phone-error-live");
    if (!url || !input || !token || !live || !window.fetch || !window.URLSearchParams) {
      return;
    }
    var asking = false;
    var send = function () { HTMLFormElement.prototype.submit.call(form); };
    var refuse = function (message) {
      var error = document.getElementById("phone-error");
      if (!error) {
        error = document.createElement("p");
        error.className = "field-error";
        error.id = "phone-error";
        live.appendChild(error);
      }
      error.textContent = message;
      input.setAttribute("aria-invalid", "true");
      var described = (input.getAttribute("aria-describedby") || "").split(/\s+/);
      if (described.indexOf("phone-error") < 0) {
        described.push("phone-error");
        input.setAttribute("aria-describedby", described.join(" ").trim());
      }
      input.focus();
    };
    form.addEventListener("submit", function (event) {
      event.preventDefault();
      if (asking) { return; }
      asking = true;
      var body = new URLSearchParams();
      body.set("csrf_token", token.value);
      body.set("phone", input.value);
      fetch(url, { method: "POST", body: body, credentials: "same-origin",
                   headers: { "Accept": "application/json" } })
        .then(function (r) { return r.ok ? r.json() : null; })
        .then(function (answer) {
          asking = false;
          if (answer && answer.accepted === false && answer.message) {
            refuse(String(answer.message));
          } else {
            send();
          }
        }, function () { asking = false; send(); });
    });
  }

  // The browser's time zone (an IANA name such as "Europe/Berlin") in the `tz` cookie, so
  // the server can show times in it (the activity page); the server checks the name
  // against the tz database and falls back to UTC, saying so. A page drawn without the
  // cookie ([data-tz-missing]) is drawn again once, now that it is set: only if the
  // cookie really stuck, so a browser that refuses cookies is not sent round in circles.
  function timeZone() {
    var zone = "";
    try { zone = Intl.DateTimeFormat().resolvedOptions().timeZone || ""; } catch (e) { return; }
    if (!/^[A-Za-z0-9_+\-]+(\/[A-Za-z0-9_+\-]+){0,2}$/.test(zone)) { return; }
    var current = document.cookie.match(/(?:^|;\s*)tz=([^;]*)/);
    if (current && current[1] === zone) { return; }
    // The name is only letters, digits and _+-/ (checked above): no encoding needed.
    document.cookie = "tz=" + zone + "; path=/; max-age=31536000; samesite=lax" +
      (location.protocol === "https:" ? "; secure" : "");
    var stuck = document.cookie.match(/(?:^|;\s*)tz=([^;]*)/);
    if (stuck && document.querySelector("[data-tz-missing]")) { location.reload(); }
  }

  document.addEventListener("DOMContentLoaded", function () {
    timeZone();
    document.querySelectorAll("input[data-passkey]").forEach(passkey);
    document.querySelectorAll("form[data-check-number]").forEach(checkNumber);
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
    // A switch (a link with role="switch") is toggled with Space, as a screen reader
    // announcing "switch" leads one to expect; Enter follows the link as ever.
    document.querySelectorAll("a[role=switch]").forEach(function (el) {
      el.addEventListener("keydown", function (event) {
        if (event.key === " ") { event.preventDefault(); el.click(); }
      });
    });
  });
})();
