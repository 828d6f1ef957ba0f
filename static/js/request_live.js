// Live updates on the request page (templates/requests/_live.html). Every REQUEST_POLL_SECONDS, not
// while the tab is hidden, the page asks for the newest change its reader may know of (an unchanged
// request answers 304). A change newer than the one the page shows refreshes its parts: header,
// description, panel, timeline, SLA targets and the composer's send buttons, never the composer's
// text. While something is half-typed the page is left alone and a banner says who changed the
// request, with "Refresh"; a change of your own (another tab) just refreshes. Without JavaScript
// the page shows what it loaded.
(function () {
  "use strict";

  var lastPoll = Date.now();
  var refreshing = false;

  function live() { return document.getElementById("request-live"); }

  function some(list, test) { return Array.prototype.some.call(list, test); }

  // Whether a control under `root` differs from what the server rendered.
  function edited(root) {
    if (!root) { return false; }
    return some(root.querySelectorAll("input, select, textarea"), function (el) {
      if (el.type === "hidden" || el.type === "submit" || el.type === "button") { return false; }
      if (el.tagName === "SELECT") {
        var rendered = 0;
        some(el.options, function (o, i) { if (o.defaultSelected) { rendered = i; return true; } return false; });
        return el.selectedIndex !== rendered;
      }
      if (el.type === "checkbox" || el.type === "radio") { return el.checked !== el.defaultChecked; }
      if (el.type === "file") { return el.files && el.files.length > 0; }
      return el.value !== el.defaultValue;
    });
  }

  function composerText() {
    var composer = document.getElementById("comment-form");
    if (!composer) { return null; }
    var areas = composer.querySelectorAll("textarea");
    for (var i = 0; i < areas.length; i++) { if (areas[i].value.trim()) { return areas[i]; } }
    return null;
  }

  function openEditForm() { return document.querySelector("#request-description details.edit-text[open]"); }

  // Something a refresh would replace, or change the meaning of, while it is being written.
  function halfTyped() {
    var composer = document.getElementById("comment-form");
    return Boolean(composerText() || openEditForm() ||
                   (composer && some(composer.querySelectorAll("input[type=file]"), function (f) {
                     return f.files && f.files.length > 0;
                   })) ||
                   edited(document.getElementById("request-panel")));
  }

  function banner(name) {
    var region = document.getElementById("live-updates");
    if (!region) { return; }
    if (name === null) {
      if (region.firstChild) { region.replaceChildren(); }
      return;
    }
    var shown = region.querySelector(".live-banner");
    if (shown && shown.getAttribute("data-by") === name) { return; }  // said already: not again every poll
    var box = document.createElement("div");
    box.className = "flash flash-info live-banner";
    box.setAttribute("data-by", name);
    var text = document.createElement("span");
    if (name) {
      var who = document.createElement("strong");
      who.textContent = name;
      text.append("Updated by ", who, " — ");
    } else {
      text.append("This request was updated — ");
    }
    var button = document.createElement("button");
    button.type = "button";
    button.className = "live-refresh";
    button.textContent = "Refresh";
    button.addEventListener("click", function () { refresh(true); });
    var note = document.createElement("span");
    note.className = "muted small";
    note.textContent = "What you have typed stays.";
    box.append(text, button, " ", note);
    region.replaceChildren(box);
  }

  // The messages about the last change go with the next one, yours (a post) or someone else's (a
  // refresh): the parts that are not re-rendered (the composer, the SLA box) would keep them. Not why
  // a reply was refused, which explains the follow-up offer beside it.
  function clearMessages() {
    document.querySelectorAll("#flash > .flash, .detail .flash").forEach(function (message) {
      if (!message.parentNode.querySelector(".follow-up-offer")) { message.remove(); }
    });
  }

  // Bring every part of the page up to date (the composer's text and an edit form being changed stay).
  function refresh(asked) {
    var el = live();
    if (!el || refreshing || !el.getAttribute("data-parts")) { return; }
    refreshing = true;
    clearMessages();
    htmx.ajax("GET", el.getAttribute("data-parts"), { source: document.body, target: el, swap: "outerHTML" })
      .finally(function () {
        refreshing = false;
        var typed = composerText();
        if (asked && typed) { typed.focus(); }  // the Refresh button is gone: back to the writing
      });
  }

  // Compare the newest change with the one the page shows.
  function check() {
    var el = live(), latest = el && el.querySelector(".last-change");
    if (!latest) { return; }
    if (latest.getAttribute("data-stamp") === el.getAttribute("data-shown")) {
      banner(null);
    } else if (latest.hasAttribute("data-by-me") || !halfTyped()) {
      refresh(false);
    } else {
      banner(latest.getAttribute("data-by") || "");
    }
  }

  document.addEventListener("htmx:load", function (evt) {
    var elt = evt.detail.elt;
    if (elt.id === "request-live" || (elt.classList && elt.classList.contains("last-change"))) {
      window.setTimeout(check, 0);  // after htmx has finished with the poll that brought it
    }
  });

  // An edit form with changed text keeps it through a refresh: its save is then checked against the
  // version it was opened from, and a stale one shows the current text beside the unsaved one.
  document.addEventListener("htmx:oobBeforeSwap", function (evt) {
    var form = openEditForm();
    if (refreshing && evt.detail.target.id === "request-description" && form && edited(form)) {
      evt.detail.shouldSwap = false;
      if (!form.querySelector(".live-behind")) {
        var note = document.createElement("p");
        note.className = "help live-behind";
        note.textContent = "The request changed while you were editing. Your text is kept; " +
          "saving first shows you the current version beside it.";
        form.insertBefore(note, form.querySelector("form"));
      }
    }
  });

  document.addEventListener("htmx:beforeRequest", function (evt) {
    var el = live();
    if (el && evt.detail.elt === el) {
      if (document.hidden) { evt.preventDefault(); return; }  // no polls from a tab nobody looks at
      lastPoll = Date.now();
      return;
    }
    if (evt.detail.requestConfig && evt.detail.requestConfig.verb === "post") { clearMessages(); }
  });

  // Back on the tab after missing a poll: ask now rather than at the next tick.
  document.addEventListener("visibilitychange", function () {
    var el = live();
    if (document.hidden || !el || !el.hasAttribute("data-every")) { return; }
    if (Date.now() - lastPoll >= 1000 * Number(el.getAttribute("data-every"))) { htmx.trigger(el, "request-poll"); }
  });
})();
