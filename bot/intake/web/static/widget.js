/* NetTask support chat: one script tag, no build, no framework.
 *
 *   <script src="https://…/chat/widget.js" data-identity="…" data-lang="de" defer></script>
 *
 * Talks docs/webchat-protocol.md over one WebSocket. Every text reaches the DOM through
 * textContent: nothing from the server or the visitor is ever parsed as HTML.
 */
(function () {
  "use strict";

  var script = document.currentScript ||
    document.querySelector('script[src$="/chat/widget.js"]');
  if (!script || window.__ntwLoaded) { return; }
  window.__ntwLoaded = true;

  var base = new URL(script.src, document.baseURI);
  var socketUrl = (base.protocol === "https:" ? "wss:" : "ws:") + "//" + base.host + "/chat/ws";
  var identity = script.getAttribute("data-identity") || null;
  var TOKEN_KEY = "ntw.visitor";
  var QUEUE_KEY = "ntw.queue";
  var BACKOFF_MIN = 1000;
  var BACKOFF_MAX = 30000;

  var TEXTS = {
    de: {
      launcher: "Chat mit dem Support",
      title: "NetTask Support",
      close: "Chat schließen",
      log: "Nachrichten",
      compose: "Ihre Nachricht",
      placeholder: "Schreiben Sie uns …",
      send: "Senden",
      sending: "wird gesendet …",
      failed: "nicht gesendet",
      connecting: "Verbindung wird aufgebaut …",
      online: "Verbunden",
      offline: "Keine Verbindung: Ihre Nachrichten warten und gehen raus, sobald sie besteht.",
      emailAsk: "Ihre E-Mail-Adresse, damit wir Sie zuordnen können",
      emailSend: "Weiter",
      emailOk: "Falls die Adresse zu einem Kundenkonto gehört, haben wir einen sechsstelligen Code an %s geschickt.",
      codeAsk: "Code aus der E-Mail",
      codeSend: "Bestätigen",
      verified: "Bestätigt: Sie schreiben als %s.",
      codeWrong: "Der Code stimmt nicht. Noch %s Versuche.",
      codeExpired: "Der Code ist abgelaufen. Bitte geben Sie Ihre Adresse erneut ein.",
      ticket: "Ticket",
      empty: "Wie können wir helfen? Schreiben Sie uns, wir antworten hier.",
      you: "Sie",
      chosen: "Auswahl gesendet",
      support: "Support"
    },
    en: {
      launcher: "Chat with support",
      title: "NetTask Support",
      close: "Close chat",
      log: "Messages",
      compose: "Your message",
      placeholder: "Write to us …",
      send: "Send",
      sending: "sending …",
      failed: "not sent",
      connecting: "Connecting …",
      online: "Connected",
      offline: "No connection: your messages wait and go out as soon as there is one.",
      emailAsk: "Your e-mail address, so that we know who you are",
      emailSend: "Continue",
      emailOk: "If the address belongs to a customer account, we have sent a six-digit code to %s.",
      codeAsk: "Code from the e-mail",
      codeSend: "Confirm",
      verified: "Confirmed: you are writing as %s.",
      codeWrong: "That code is not right. %s tries left.",
      codeExpired: "The code has expired. Please enter your address again.",
      ticket: "Ticket",
      empty: "How can we help? Write to us, we answer here.",
      you: "You",
      chosen: "Choice sent",
      support: "Support"
    }
  };

  function pickLang() {
    var wanted = [script.getAttribute("data-lang"), document.documentElement.lang,
      navigator.language];
    for (var i = 0; i < wanted.length; i++) {
      var code = (wanted[i] || "").toLowerCase().slice(0, 2);
      if (TEXTS[code]) { return code; }
    }
    return "en";
  }

  var lang = pickLang();
  var t = TEXTS[lang];

  function say(template, value) { return template.replace("%s", String(value)); }

  function el(tag, className, text) {
    var node = document.createElement(tag);
    if (className) { node.className = className; }
    if (text !== undefined && text !== null) { node.textContent = String(text); }
    return node;
  }

  function newClientId() {
    if (window.crypto && typeof window.crypto.randomUUID === "function") {
      return window.crypto.randomUUID();
    }
    var bytes = new Uint8Array(16);
    window.crypto.getRandomValues(bytes);
    return Array.prototype.map.call(bytes, function (b) {
      return ("0" + b.toString(16)).slice(-2);
    }).join("");
  }

  // ---- storage: the visitor token and the unacknowledged queue survive reloads ----------
  function load(key, fallback) {
    try {
      var raw = window.localStorage.getItem(key);
      return raw === null ? fallback : JSON.parse(raw);
    } catch (e) { return fallback; }
  }
  function keep(key, value) {
    try { window.localStorage.setItem(key, JSON.stringify(value)); } catch (e) { /* private mode */ }
  }
  function queue() { return load(QUEUE_KEY, []); }
  function enqueue(entry) { var q = queue(); q.push(entry); keep(QUEUE_KEY, q); }
  function dequeue(clientId) {
    keep(QUEUE_KEY, queue().filter(function (e) { return e.client_id !== clientId; }));
  }

  // ---- the DOM: a launcher and a dialog -----------------------------------------------------
  var css = document.createElement("link");
  css.rel = "stylesheet";
  css.href = new URL("widget.css", base).href;
  document.head.appendChild(css);

  var root = el("div", "ntw-root");
  root.setAttribute("lang", lang);
  var launcher = el("button", "ntw-launcher", t.launcher);
  launcher.type = "button";
  launcher.setAttribute("aria-haspopup", "dialog");
  launcher.setAttribute("aria-expanded", "false");
  launcher.setAttribute("aria-controls", "ntw-panel");

  var panel = el("div", "ntw-panel");
  panel.id = "ntw-panel";
  panel.setAttribute("role", "dialog");
  panel.setAttribute("aria-labelledby", "ntw-title");
  panel.hidden = true;

  var header = el("div", "ntw-header");
  var title = el("h2", "ntw-title", t.title);
  title.id = "ntw-title";
  var closeButton = el("button", "ntw-close", "×");
  closeButton.type = "button";
  closeButton.setAttribute("aria-label", t.close);
  header.appendChild(title);
  header.appendChild(closeButton);

  var status = el("p", "ntw-status", t.connecting);
  status.setAttribute("role", "status");

  var log = el("div", "ntw-log");
  log.setAttribute("role", "log");
  log.setAttribute("aria-live", "polite");
  log.setAttribute("aria-label", t.log);
  log.tabIndex = 0;  // scrollable by keyboard

  function field(id, labelText, input, buttonText) {
    var form = el("form", "ntw-form");
    form.hidden = true;
    var label = el("label", "ntw-label", labelText);
    label.htmlFor = id;
    input.id = id;
    input.className = "ntw-input";
    var button = el("button", "ntw-button", buttonText);
    button.type = "submit";
    var row = el("div", "ntw-row");
    row.appendChild(input);
    row.appendChild(button);
    form.appendChild(label);
    form.appendChild(row);
    return form;
  }
  var emailInput = el("input");
  emailInput.type = "email";
  emailInput.autocomplete = "email";
  emailInput.required = true;
  var emailForm = field("ntw-email", t.emailAsk, emailInput, t.emailSend);
  var codeInput = el("input");
  codeInput.inputMode = "numeric";
  codeInput.autocomplete = "one-time-code";
  codeInput.pattern = "[0-9]{6}";
  codeInput.maxLength = 6;
  codeInput.required = true;
  var codeForm = field("ntw-code", t.codeAsk, codeInput, t.codeSend);

  var compose = el("form", "ntw-compose");
  var composeLabel = el("label", "ntw-label ntw-sr", t.compose);
  composeLabel.htmlFor = "ntw-text";
  var textarea = el("textarea", "ntw-text");
  textarea.id = "ntw-text";
  textarea.rows = 2;
  textarea.maxLength = 4000;
  textarea.placeholder = t.placeholder;
  var sendButton = el("button", "ntw-send", t.send);
  sendButton.type = "submit";
  compose.appendChild(composeLabel);
  compose.appendChild(textarea);
  compose.appendChild(sendButton);

  panel.appendChild(header);
  panel.appendChild(status);
  panel.appendChild(log);
  panel.appendChild(emailForm);
  panel.appendChild(codeForm);
  panel.appendChild(compose);
  root.appendChild(panel);
  root.appendChild(launcher);

  // ---- rendering --------------------------------------------------------------------------
  var shown = {};        // item id -> element
  var pending = {};      // client_id -> element, until its ack
  var lastOut = 0;       // the highest out item id in the log
  var seenSent = 0;

  function timeOf(iso) {
    var date = iso ? new Date(iso) : new Date();
    return date.toLocaleTimeString(lang, { hour: "2-digit", minute: "2-digit" });
  }

  function setMeta(node, parts) {
    node.querySelector(".ntw-meta").textContent = parts.filter(Boolean).join(" · ");
  }

  function bubble(direction, kind, text, at, author) {
    var node = el("div", "ntw-item ntw-" + direction + " ntw-kind-" + kind);
    var name = direction === "in" ? t.you : (author || t.support);
    if (direction === "out") {  // a chat names who answers instead of signing the text
      var shownName = el("p", "ntw-author", name);
      shownName.setAttribute("aria-hidden", "true");  // the body's own prefix says it once
      node.appendChild(shownName);
    }
    var who = el("span", "ntw-sr", name + ": ");
    var body = el("p", "ntw-body", text);
    body.insertBefore(who, body.firstChild);
    node.appendChild(body);
    node.appendChild(el("p", "ntw-meta"));
    node.setAttribute("data-at", at || "");
    return node;
  }

  function render(item) {
    if (shown[item.id]) { return; }
    var local = item.client_id && pending[item.client_id];
    if (local) {  // our own message, now stored: the same bubble, no longer "sending"
      confirm(item.client_id, item.id, item.ticket);
      return;
    }
    var chosen = item.direction === "in" && item.kind === "choice";
    // a clicked choice is stored with the label of the button it came from
    var text = chosen ? (item.text || t.chosen) : item.text;
    var node = bubble(item.direction, item.kind, text, item.at, item.author);
    node.setAttribute("data-id", String(item.id));
    if (chosen) { answered(choiceKey(item)); }
    setMeta(node, [item.ticket ? t.ticket + " NT#" + item.ticket : "", timeOf(item.at)]);
    if (item.choices && item.choices.length) {
      var row = el("div", "ntw-choices");
      item.choices.forEach(function (choice) {
        var button = el("button", "ntw-choice", choice.label);
        button.type = "button";
        button.setAttribute("data-choice", choiceKey(choice));
        button.addEventListener("click", function () {
          Array.prototype.forEach.call(row.querySelectorAll("button"), function (b) {
            b.disabled = true;
          });
          button.setAttribute("aria-pressed", "true");
          sendEntry({ type: "choice", client_id: newClientId(), action: choice.action,
            value: choice.value, text: choice.label });
        });
        row.appendChild(button);
      });
      node.appendChild(row);
    }
    shown[item.id] = node;
    append(node);
    if (item.direction === "out" && item.id > lastOut) { lastOut = item.id; }
    markSeen();
  }

  function choiceKey(choice) { return (choice.action || "") + "\n" + (choice.value || ""); }

  function answered(key) {  // the buttons of a question already answered: no second click
    Array.prototype.forEach.call(log.querySelectorAll(".ntw-choice"), function (button) {
      if (button.getAttribute("data-choice") !== key) { return; }
      Array.prototype.forEach.call(button.parentNode.querySelectorAll("button"), function (b) {
        b.disabled = true;
      });
      button.setAttribute("aria-pressed", "true");
    });
  }

  function renderPending(entry) {
    var node = bubble("in", entry.type === "choice" ? "choice" : "text", entry.text, entry.at);
    node.classList.add("ntw-pending");
    setMeta(node, [timeOf(entry.at), t.sending]);
    pending[entry.client_id] = node;
    append(node);
  }

  function confirm(clientId, id, ticket) {
    var node = pending[clientId];
    delete pending[clientId];
    dequeue(clientId);
    if (!node) { return; }
    node.classList.remove("ntw-pending");
    node.setAttribute("data-id", String(id));
    shown[id] = node;
    setMeta(node, [ticket ? t.ticket + " NT#" + ticket : "", timeOf(node.getAttribute("data-at"))]);
  }

  function note(text) {
    var node = el("p", "ntw-note", text);
    log.appendChild(node);
    scrollDown();
    return node;
  }

  function append(node) {  // a message: the "how can we help" greeting has done its job
    var greeting = log.querySelector(".ntw-empty");
    if (greeting) { log.removeChild(greeting); }
    log.appendChild(node);
    scrollDown();
  }

  function scrollDown() { log.scrollTop = log.scrollHeight; }

  function rebuild(history) {
    log.setAttribute("aria-busy", "true");
    while (log.firstChild) { log.removeChild(log.firstChild); }
    shown = {};
    pending = {};
    lastOut = 0;
    if (!history.length && !queue().length) { note(t.empty).classList.add("ntw-empty"); }
    history.forEach(render);
    var stored = {};
    history.forEach(function (item) { if (item.client_id) { stored[item.client_id] = true; } });
    queue().forEach(function (entry) {
      if (stored[entry.client_id]) { dequeue(entry.client_id); } else { renderPending(entry); }
    });
    log.removeAttribute("aria-busy");
  }

  // ---- the socket -------------------------------------------------------------------------
  var ws = null;
  var ready = false;      // welcome received on the current socket
  var backoff = BACKOFF_MIN;
  var retry = null;
  var pinger = null;

  function frame(entry) {
    var out = { type: entry.type, client_id: entry.client_id };
    if (entry.type === "choice") { out.action = entry.action; out.value = entry.value; }
    else { out.text = entry.text; }
    return out;
  }

  function transmit(data) {
    if (ws && ready && ws.readyState === WebSocket.OPEN) {
      ws.send(JSON.stringify(data));
      return true;
    }
    return false;
  }

  function sendEntry(entry) {
    entry.at = new Date().toISOString();
    enqueue(entry);  // kept until its ack, so a reload or a cut connection loses nothing
    renderPending(entry);
    transmit(frame(entry));
  }

  function setStatus(text, online) {
    status.textContent = text;
    root.classList.toggle("ntw-offline", !online);
  }

  function connect() {
    retry = null;
    if (ws && ws.readyState <= WebSocket.OPEN) { return; }
    setStatus(t.connecting, false);
    var socket;
    try { socket = new WebSocket(socketUrl); } catch (e) { schedule(); return; }
    ws = socket;
    ready = false;
    socket.onopen = function () {
      socket.send(JSON.stringify({ type: "hello", visitor: load(TOKEN_KEY, null),
        identity: identity, lang: lang }));
    };
    socket.onmessage = function (event) {
      var data;
      try { data = JSON.parse(event.data); } catch (e) { return; }
      if (socket === ws) { receive(data); }
    };
    socket.onclose = function (event) {
      if (socket !== ws) { return; }
      ready = false;
      clearInterval(pinger);
      if (event.code !== 4429) { setStatus(t.offline, false); }  // 4429: the refusal stays shown
      schedule();
    };
    socket.onerror = function () { /* onclose follows and reconnects */ };
  }

  function schedule() {
    if (retry) { return; }
    var wait = backoff;
    backoff = Math.min(backoff * 2, BACKOFF_MAX);
    retry = setTimeout(connect, wait);
  }

  function reconnectNow() {
    if (retry) { clearTimeout(retry); retry = null; }
    backoff = BACKOFF_MIN;
    connect();
  }

  function receive(data) {
    switch (data.type) {
      case "welcome":
        keep(TOKEN_KEY, data.visitor);
        ready = true;
        backoff = BACKOFF_MIN;
        setStatus(t.online, true);
        rebuild(data.history || []);
        emailForm.hidden = !data.asks_email;
        if (data.verified) { codeForm.hidden = true; }
        queue().forEach(function (entry) { transmit(frame(entry)); });
        clearInterval(pinger);
        pinger = setInterval(function () { transmit({ type: "ping" }); }, 25000);
        markSeen();
        break;
      case "ack":
        confirm(data.client_id, data.id, null);
        break;
      case "item":
        render(data.item);
        break;
      case "email_ok":
        emailForm.hidden = true;
        codeForm.hidden = false;
        note(say(t.emailOk, data.address));
        if (!panel.hidden) { codeInput.focus(); }
        break;
      case "verified":
        codeForm.hidden = true;
        emailForm.hidden = true;
        note(say(t.verified, data.name || data.email));
        if (!panel.hidden) { textarea.focus(); }
        break;
      case "code_wrong":
        codeInput.value = "";
        note(say(t.codeWrong, data.tries_left));
        break;
      case "code_expired":
        codeForm.hidden = true;
        emailForm.hidden = false;
        note(t.codeExpired);
        break;
      case "error":
        if (data.client_id && pending[data.client_id]) {
          // refused for good (too large, too many): resending would be refused again
          var node = pending[data.client_id];
          delete pending[data.client_id];
          dequeue(data.client_id);
          node.classList.remove("ntw-pending");
          node.classList.add("ntw-failed");
          setMeta(node, [t.failed, data.message]);
        } else if (!ready && data.code === "rate_limited") {
          // refused before the welcome (too many new visitors from here): the status line
          // says it once, instead of a note at each reconnect
          setStatus(data.message, false);
        } else {
          note(data.message || data.code);
        }
        break;
      default:
        break;  // pong, and frames of a newer service
    }
  }

  // ---- seen: only what an open panel on a visible page showed -----------------------------
  function markSeen() {
    if (panel.hidden || document.visibilityState !== "visible") { return; }
    if (lastOut > seenSent && transmit({ type: "seen", upto: lastOut })) { seenSent = lastOut; }
  }

  // ---- behaviour ------------------------------------------------------------------------------
  function open() {
    panel.hidden = false;
    root.classList.add("ntw-open");
    launcher.setAttribute("aria-expanded", "true");
    scrollDown();
    textarea.focus();  // writing is what people open a chat for; the address prompt is above
    markSeen();
  }

  function close() {
    panel.hidden = true;
    root.classList.remove("ntw-open");
    launcher.setAttribute("aria-expanded", "false");
    launcher.focus();
  }

  launcher.addEventListener("click", function () { if (panel.hidden) { open(); } else { close(); } });
  closeButton.addEventListener("click", close);
  panel.addEventListener("keydown", function (event) {
    if (event.key === "Escape") { event.preventDefault(); close(); }
  });

  compose.addEventListener("submit", function (event) {
    event.preventDefault();
    var text = textarea.value.trim();
    if (!text) { return; }
    textarea.value = "";
    sendEntry({ type: "message", client_id: newClientId(), text: text });
  });
  textarea.addEventListener("keydown", function (event) {
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      compose.requestSubmit();
    }
  });
  emailForm.addEventListener("submit", function (event) {
    event.preventDefault();
    var address = emailInput.value.trim();
    if (address && transmit({ type: "email", address: address })) { emailInput.value = ""; }
  });
  codeForm.addEventListener("submit", function (event) {
    event.preventDefault();
    var code = codeInput.value.trim();
    if (code && transmit({ type: "code", code: code })) { codeInput.value = ""; }
  });

  document.addEventListener("visibilitychange", markSeen);
  window.addEventListener("online", reconnectNow);
  window.addEventListener("offline", function () {
    // the socket may look open for a long while on a dead network: start over at once
    if (ws) { var dead = ws; ws = null; ready = false; dead.close(); }
    clearInterval(pinger);
    setStatus(t.offline, false);
    schedule();
  });

  function start() {
    document.body.appendChild(root);
    connect();
  }
  if (document.body) { start(); } else { document.addEventListener("DOMContentLoaded", start); }
}());
