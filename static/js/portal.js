// Small page behaviour: local times, busy states, and a message when an HTMX request fails.
(function () {
  "use strict";

  var timeFormat = new Intl.DateTimeFormat(undefined, {
    day: "numeric", month: "short", year: "numeric", hour: "2-digit", minute: "2-digit"
  });

  // Absolute times are rendered in UTC by the server; show them in the reader's time zone.
  function localiseTimes(root) {
    root.querySelectorAll("time[datetime]").forEach(function (el) {
      var when = new Date(el.getAttribute("datetime"));
      if (isNaN(when)) { return; }
      var local = timeFormat.format(when);
      if (el.title) { el.title = local; } else { el.textContent = local; }
    });
  }

  function formatDuration(seconds) {
    seconds = Math.abs(Math.floor(seconds));
    var days = Math.floor(seconds / 86400), hours = Math.floor((seconds % 86400) / 3600),
        minutes = Math.floor((seconds % 3600) / 60);
    if (days) { return hours ? days + " d " + hours + " h" : days + " d"; }
    if (hours) { return minutes ? hours + " h " + minutes + " min" : hours + " h"; }
    return minutes + " min";
  }

  // SLA countdowns tick between the panel's 30-second refreshes.
  function tickCountdowns() {
    var now = Date.now();
    document.querySelectorAll(".countdown[data-due]").forEach(function (el) {
      var due = Date.parse(el.getAttribute("data-due"));
      if (isNaN(due)) { return; }
      var seconds = (due - now) / 1000;
      el.textContent = seconds < 0 ? formatDuration(seconds) + " overdue" : "in " + formatDuration(seconds);
      el.classList.toggle("overdue", seconds < 0);
    });
  }

  function showError(message) {
    var stack = document.getElementById("flash");
    if (!stack) { return; }
    var div = document.createElement("div");
    div.className = "flash flash-error";
    div.setAttribute("role", "alert");
    div.textContent = message;
    stack.replaceChildren(div);
  }

  document.addEventListener("DOMContentLoaded", function () {
    localiseTimes(document);
    tickCountdowns();
    window.setInterval(tickCountdowns, 15000);
    // On a phone the menu and the request list's tabs are rows that scroll: bring the current one into view.
    document.querySelectorAll(".mainnav a[aria-current=page], .view-bar .tabs a[aria-current=page]").forEach(function (here) {
      var nav = here.parentNode;
      if (nav.scrollWidth > nav.clientWidth) nav.scrollLeft = here.offsetLeft - (nav.clientWidth - here.offsetWidth) / 2;
    });
  });
  // A polled partial may come back from the browser's cache (a 304): its countdowns are as old as
  // the copy, so they tick at once.
  document.addEventListener("htmx:afterSwap", function (evt) {
    var root = evt.detail.target.parentNode || document;
    // The server has just confirmed what was swapped in (a 200, or a 304 and the kept copy): "updated" is now.
    root.querySelectorAll("time[data-checked]").forEach(function (el) {
      var now = new Date();
      now.setSeconds(0, 0);
      el.setAttribute("datetime", now.toISOString());
    });
    localiseTimes(root);
    tickCountdowns();
  });
  // The admin menu and the list's "Save view" close on a click elsewhere and on Escape, as menus do.
  document.addEventListener("click", function (evt) {
    document.querySelectorAll("details.admin-menu[open], details.save-view[open]").forEach(function (menu) {
      if (!menu.contains(evt.target)) menu.open = false;
    });
  });
  document.addEventListener("keydown", function (evt) {
    if (evt.key !== "Escape") return;
    document.querySelectorAll("details.admin-menu[open], details.save-view[open]").forEach(function (menu) {
      menu.open = false;
      menu.querySelector("summary").focus();
    });
  });
  // A field message swapped in out of band (data-error-for) marks its input invalid, or valid again,
  // without the input itself being replaced while the user is typing in it.
  document.addEventListener("htmx:load", function (evt) {
    var message = evt.detail.elt;
    if (!message.matches || !message.matches("[data-error-for]")) { return; }
    var input = document.getElementById(message.getAttribute("data-error-for"));
    if (!input) { return; }
    var invalid = message.textContent.trim() !== "";
    input.setAttribute("aria-invalid", invalid ? "true" : "false");
    var field = input.closest(".field");
    if (field) { field.classList.toggle("has-error", invalid); }
  });
  document.addEventListener("htmx:responseError", function (evt) {
    var status = evt.detail.xhr.status;
    var messages = {
      400: "The form expired. Reload the page and try again.",
      403: "You do not have permission to do that.",
      404: "That item no longer exists or is not visible to you.",
      413: "That upload is too large.",
      429: "Too many attempts. Wait a few minutes and try again."
    };
    showError(messages[status] || "Something went wrong (error " + status + "). Your change was not saved; try again.");
  });
  document.addEventListener("htmx:sendError", function () {
    showError("The portal could not be reached. Check your connection and try again.");
  });

  // While HTMX loads a part, the part says so to assistive technology (aria-busy). A part swapped
  // whole arrives with its own markup; one that stays (a 304, a refusal not swapped) is reset.
  var busyAdded = new WeakSet();
  document.addEventListener("htmx:beforeRequest", function (evt) {
    var part = evt.detail.target;
    if (!part || part.nodeType !== 1) { return; }
    if (!part.hasAttribute("aria-busy")) { busyAdded.add(part); }
    part.setAttribute("aria-busy", "true");
  });
  document.addEventListener("htmx:afterRequest", function (evt) {
    var part = evt.detail.target;
    if (!part || part.nodeType !== 1 || part.getAttribute("aria-busy") !== "true") { return; }
    if (busyAdded.has(part)) { part.removeAttribute("aria-busy"); busyAdded.delete(part); }
    else { part.setAttribute("aria-busy", "false"); }
  });

  // Focus stays where the user was when an HTMX answer replaces the part it was in (htmx itself only
  // keeps an element with an id): the same control in the new markup, else the outcome message in the
  // part, else the part. Never to <body>, where a keyboard or screen reader user would start over.
  var focusBefore = new WeakMap();  // request (xhr) -> what had the focus when it set off, and its target
  function signature(el) {
    var form = el.closest("form"), text = /^(BUTTON|A|SUMMARY)$/.test(el.tagName) ? el.textContent.trim() : "";
    return [el.tagName, el.getAttribute("name"), el.getAttribute("value"), el.getAttribute("href"), text,
            form && (form.getAttribute("hx-post") || form.getAttribute("action"))].join("|");
  }
  function focusable(el) {
    return el && el.isConnected && !el.disabled && el.getClientRects().length > 0;
  }
  function sameControl(old) {
    if (old.id && focusable(document.getElementById(old.id))) { return document.getElementById(old.id); }
    var wanted = signature(old), found = null;
    document.querySelectorAll(old.tagName).forEach(function (el) {
      if (!found && focusable(el) && signature(el) === wanted) { found = el; }
    });
    return found;
  }
  function placeToStay(part) {
    if (!part) { return null; }
    var message = part.querySelector(".flash[role=status], .flash[role=alert], [role=alert]:not(:empty)") || part;
    if (!message.hasAttribute("tabindex") && !message.matches("a[href], button, input, select, textarea")) {
      message.setAttribute("tabindex", "-1");
    }
    return message;
  }
  document.addEventListener("htmx:beforeRequest", function (evt) {
    var active = document.activeElement;
    if (evt.detail.xhr && active && active !== document.body) {
      focusBefore.set(evt.detail.xhr, {elt: active, part: evt.detail.target && evt.detail.target.id});
    }
  });
  function keepFocus(evt) {
    var before = evt.detail.xhr && focusBefore.get(evt.detail.xhr), active = document.activeElement;
    if (!before) { return; }
    if (active && active !== document.body && active.isConnected) { focusBefore.delete(evt.detail.xhr); return; }
    var old = before.elt;
    var next = focusable(old) ? old : sameControl(old) || placeToStay(before.part && document.getElementById(before.part));
    if (next) {
      next.focus({preventScroll: true});
      focusBefore.delete(evt.detail.xhr);
    }
  }
  document.addEventListener("htmx:afterRequest", keepFocus);
  document.addEventListener("htmx:afterSettle", keepFocus);

  // A form marked data-submit-once is sent once: its buttons are disabled while it is on its way (a
  // double click, or Enter pressed twice, does not make two requests). Back from the next page, the
  // browser may show the page as it was left: the buttons are enabled again.
  document.addEventListener("submit", function (evt) {
    var form = evt.target;
    if (!form.matches || !form.matches("form[data-submit-once]")) { return; }
    if (form.getAttribute("aria-busy") === "true") { evt.preventDefault(); return; }
    form.setAttribute("aria-busy", "true");
    // after this event: the form's data is read first, so the button pressed still sends its name and value
    window.setTimeout(function () {
      form.querySelectorAll("button[type=submit], button:not([type]), input[type=submit]").forEach(function (button) {
        button.disabled = true;
      });
    }, 0);
  });
  window.addEventListener("pageshow", function (evt) {
    if (!evt.persisted) { return; }
    document.querySelectorAll("form[data-submit-once][aria-busy=true]").forEach(function (form) {
      form.removeAttribute("aria-busy");
      form.querySelectorAll("button, input[type=submit]").forEach(function (button) { button.disabled = false; });
    });
  });
})();
