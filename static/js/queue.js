// Working the queue from the keyboard, and ticking rows for a bulk change. Everything here has a
// way without JavaScript (links, checkboxes, the form's button); this only makes it quicker.
(function () {
  "use strict";

  var SHORTCUTS = [
    ["j / k", "Next / previous request in the list"],
    ["o or Enter", "Open the highlighted request"],
    ["x", "Tick the highlighted request"],
    ["a", "Assign to me (the ticked requests, else the highlighted one; on a request, that request)"],
    ["r", "Reply (on a request)"],
    ["?", "Show these shortcuts"]
  ];

  function typing(el) {
    if (!el) return false;
    var tag = el.tagName;
    return tag === "INPUT" || tag === "TEXTAREA" || tag === "SELECT" || el.isContentEditable;
  }

  function rows() { return Array.prototype.slice.call(document.querySelectorAll("#request-table tbody tr")); }
  function current() { return document.querySelector("#request-table tbody tr.current"); }

  function highlight(row) {
    rows().forEach(function (r) { r.classList.remove("current"); r.removeAttribute("aria-current"); });
    if (!row) return;
    row.classList.add("current");
    row.setAttribute("aria-current", "true");
    var link = row.querySelector("td.title a");
    if (link) link.focus({preventScroll: true});
    row.scrollIntoView({block: "nearest"});
  }

  function move(step) {
    var all = rows();
    if (!all.length) return;
    var at = all.indexOf(current());
    highlight(all[Math.min(all.length - 1, Math.max(0, at < 0 ? 0 : at + step))]);
  }

  // ---------------------------------------------------------------- ticking rows

  var lastTicked = null;

  function boxes() { return Array.prototype.slice.call(document.querySelectorAll("#request-table input[name=ids]")); }

  function updateCount() {
    var count = document.querySelector("[data-bulk-count]");
    if (!count) return;
    var ticked = boxes().filter(function (b) { return b.checked; }).length;
    count.textContent = ticked ? ticked + " ticked" : "Tick requests to change several at once";
    var all = document.querySelector("#request-table [data-select-all]");
    if (all) {
      all.checked = ticked > 0 && ticked === boxes().length;
      all.indeterminate = ticked > 0 && ticked < boxes().length;
    }
  }

  document.addEventListener("click", function (evt) {
    var box = evt.target;
    if (!(box instanceof HTMLInputElement) || !box.closest("#request-table")) return;
    if (box.matches("[data-select-all]")) {
      boxes().forEach(function (b) { b.checked = box.checked; });
    } else if (box.name === "ids") {
      var all = boxes();
      if (evt.shiftKey && lastTicked && all.indexOf(lastTicked) >= 0) {  // a range, as in a mail client
        var from = all.indexOf(lastTicked), to = all.indexOf(box);
        all.slice(Math.min(from, to), Math.max(from, to) + 1).forEach(function (b) { b.checked = box.checked; });
      }
      lastTicked = box;
    }
    updateCount();
  });
  document.addEventListener("htmx:afterSwap", function () { lastTicked = null; updateCount(); });

  // ---------------------------------------------------------------- the shortcuts

  function showHelp() {
    var dialog = document.getElementById("shortcuts");
    if (!dialog) {
      dialog = document.createElement("dialog");
      dialog.id = "shortcuts";
      dialog.className = "shortcuts";
      dialog.setAttribute("aria-labelledby", "shortcuts-title");
      var title = document.createElement("h2");
      title.id = "shortcuts-title";
      title.textContent = "Keyboard shortcuts";
      var list = document.createElement("dl");
      SHORTCUTS.forEach(function (s) {
        var dt = document.createElement("dt"), dd = document.createElement("dd"), kbd = document.createElement("kbd");
        kbd.textContent = s[0];
        dt.appendChild(kbd);
        dd.textContent = s[1];
        list.appendChild(dt);
        list.appendChild(dd);
      });
      var note = document.createElement("p");
      note.className = "muted small";
      note.textContent = "Shortcuts never fire while you type in a field.";
      var close = document.createElement("button");
      close.type = "button";
      close.textContent = "Close";
      close.addEventListener("click", function () { dialog.close(); });
      dialog.append(title, list, note, close);
      document.body.appendChild(dialog);
    }
    if (!dialog.open) dialog.showModal();
  }

  function assignToMe() {
    var onRequest = document.querySelector("form input[name=assignee][value=me]");
    if (onRequest && !document.getElementById("request-table")) {
      var button = onRequest.form.querySelector("button[type=submit]");
      if (button) button.click();
      return;
    }
    var form = document.getElementById("bulk-form");
    if (!form) return;
    var ticked = boxes().filter(function (b) { return b.checked; });
    if (!ticked.length) {
      var row = current();
      var box = row && row.querySelector("input[name=ids]");
      if (!box) return;
      box.checked = true;
    }
    form.querySelector("select[name=change]").value = "assignee:me";
    form.requestSubmit();
  }

  document.addEventListener("keydown", function (evt) {
    if (evt.ctrlKey || evt.metaKey || evt.altKey || typing(evt.target)) return;
    if (document.querySelector("dialog[open]") && evt.key !== "?") return;
    var row = current();
    switch (evt.key) {
      case "j": move(1); break;
      case "k": move(-1); break;
      case "o":
      case "Enter":
        // Enter belongs to whatever has the focus (a button, a link elsewhere) unless it is the row's own.
        if (!row || (evt.key === "Enter" && document.activeElement !== document.body && !row.contains(document.activeElement))) return;
        var link = row.querySelector("td.title a");
        if (link) window.location.assign(link.href);
        break;
      case "x":
        if (!row) return;
        var box = row.querySelector("input[name=ids]");
        if (box) { box.checked = !box.checked; lastTicked = box; updateCount(); }
        break;
      case "a": assignToMe(); break;
      case "r":
        var body = document.querySelector(".composer textarea[name=body], textarea[name=body]");
        if (!body) return;
        body.focus();
        body.scrollIntoView({block: "center"});
        break;
      case "?": showHelp(); break;
      default: return;
    }
    evt.preventDefault();
  });
})();
