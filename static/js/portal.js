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
    // On a phone the menu is one row that scrolls: bring the current page's link into view.
    var here = document.querySelector(".mainnav a[aria-current=page]");
    var nav = here && here.parentNode;
    if (nav && nav.scrollWidth > nav.clientWidth) nav.scrollLeft = here.offsetLeft - (nav.clientWidth - here.offsetWidth) / 2;
  });
  document.addEventListener("htmx:afterSwap", function (evt) { localiseTimes(evt.detail.target.parentNode || document); });
  // The admin menu closes on a click elsewhere and on Escape, as menus do.
  document.addEventListener("click", function (evt) {
    document.querySelectorAll("details.admin-menu[open]").forEach(function (menu) {
      if (!menu.contains(evt.target)) menu.open = false;
    });
  });
  document.addEventListener("keydown", function (evt) {
    if (evt.key !== "Escape") return;
    document.querySelectorAll("details.admin-menu[open]").forEach(function (menu) {
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
})();
