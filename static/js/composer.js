// The request page's composer (staff): "Insert" puts the chosen canned reply, filled in for this
// request, at the cursor in the text. Without this file the button posts the draft and gets it back
// with the reply added (requests.insert_canned_reply), so the page works the same without JavaScript.
(function () {
  "use strict";

  function say(message) {
    var status = document.getElementById("composer-canned-status");
    if (status) { status.textContent = message; }
  }

  function insertAtCursor(textarea, text) {
    var start = textarea.selectionStart, end = textarea.selectionEnd,
        before = textarea.value.slice(0, start), after = textarea.value.slice(end);
    // Beside other words, the reply is a paragraph of its own.
    if (before && !/\n$/.test(before)) { text = "\n\n" + text; }
    if (after && !/^\n/.test(after)) { text = text + "\n\n"; }
    textarea.focus();
    textarea.setRangeText(text, start, end, "end");
    textarea.dispatchEvent(new Event("input", { bubbles: true }));
  }

  // Enter on a mode tab (a radio button) would send the form, half-written: it only picks the mode.
  document.addEventListener("keydown", function (evt) {
    if (evt.key === "Enter" && evt.target.matches && evt.target.matches(".composer .mode-radio")) {
      evt.preventDefault();
    }
  });

  document.addEventListener("click", function (evt) {
    var button = evt.target.closest && evt.target.closest("button[data-canned-text]");
    if (!button) { return; }
    evt.preventDefault();  // neither the plain post nor htmx's: this inserts in place
    var form = button.form, select = form && form.querySelector("select[name=canned_reply]"),
        textarea = form && form.querySelector("textarea[name=body]");
    if (!select || !textarea) { return; }
    if (!select.value) {
      say("Choose a canned reply to insert.");
      select.focus();
      return;
    }
    say("");
    button.disabled = true;
    var url = button.getAttribute("data-canned-text") + "?canned_reply=" + encodeURIComponent(select.value);
    // A redirect (a session that ended goes to the sign-in page) is a failure, never text to insert.
    fetch(url, { credentials: "same-origin", redirect: "manual", headers: { "Accept": "text/plain" } })
      .then(function (response) {
        var plain = (response.headers.get("Content-Type") || "").indexOf("text/plain") === 0;
        if (response.type === "opaqueredirect" || !plain) {
          throw new Error("Your session may have ended: reload the page and try again.");
        }
        return response.text().then(function (text) {
          if (!response.ok) { throw new Error(text || "That canned reply could not be loaded; try again."); }
          return text;
        });
      })
      .then(function (text) {
        insertAtCursor(textarea, text);
        select.value = "";
      })
      .catch(function (error) {
        say(error instanceof TypeError ? "The portal could not be reached. Check your connection and try again."
                                       : error.message);
      })
      .finally(function () { button.disabled = false; });
  });

  // @mentions in an internal note: typing "@" and the start of a colleague's name offers the
  // matching names (from the composer's <datalist id="composer-people">); Enter, Tab or a click puts
  // "@Full Name " in the text. The server finds the names itself, so typing one in full works alike.
  var MENTION = /(^|[^\w.+\-@])@([^\s@]*(?: [^\s@]*)?)$/;
  var MAX_SHOWN = 6;

  function noteMode(textarea) {
    var note = textarea.form && textarea.form.querySelector("#composer-mode-note");
    return note && note.checked;
  }

  function people() {
    var list = document.getElementById("composer-people");
    return list ? Array.prototype.map.call(list.options, function (o) {
      return { name: o.value, handle: o.getAttribute("data-handle") || "" };
    }) : [];
  }

  function matches(query) {
    var q = query.toLowerCase();
    return people().filter(function (p) {
      var name = p.name.toLowerCase();
      return name.indexOf(q) === 0 || name.indexOf(" " + q) > 0 || p.handle.toLowerCase().indexOf(q) === 0;
    }).slice(0, MAX_SHOWN);
  }

  function box() { return document.getElementById("composer-mentions"); }

  function close(textarea) {
    var list = box();
    if (list) { list.hidden = true; list.innerHTML = ""; }
    if (textarea) {  // (a textarea may not carry aria-expanded: the open list is said by aria-controls)
      textarea.removeAttribute("aria-controls");
      textarea.removeAttribute("aria-activedescendant");
    }
  }

  function pending(textarea) {
    var m = MENTION.exec(textarea.value.slice(0, textarea.selectionStart));
    return m ? { query: m[2], start: textarea.selectionStart - m[2].length - 1 } : null;
  }

  function offer(textarea) {
    var list = box(), at = noteMode(textarea) ? pending(textarea) : null;
    var found = at ? matches(at.query) : [];
    if (!list || !found.length) { close(textarea); return; }
    list.innerHTML = "";
    found.forEach(function (p, i) {
      var item = document.createElement("li");
      item.id = "composer-mention-" + i;
      item.setAttribute("role", "option");
      item.setAttribute("aria-selected", i === 0 ? "true" : "false");
      item.setAttribute("data-name", p.name);
      item.textContent = p.name;
      if (p.handle) {
        var handle = document.createElement("span");
        handle.className = "muted";
        handle.textContent = " @" + p.handle;
        item.appendChild(handle);
      }
      list.appendChild(item);
    });
    list.hidden = false;
    textarea.setAttribute("aria-autocomplete", "list");
    textarea.setAttribute("aria-controls", list.id);
    textarea.setAttribute("aria-activedescendant", "composer-mention-0");
  }

  function choose(textarea, name) {
    var at = pending(textarea);
    if (!at) { close(textarea); return; }
    textarea.focus();
    textarea.setRangeText("@" + name + " ", at.start, textarea.selectionStart, "end");
    close(textarea);
  }

  function move(textarea, step) {
    var items = box().querySelectorAll("[role=option]"), current = 0;
    items.forEach(function (item, i) { if (item.getAttribute("aria-selected") === "true") { current = i; } });
    var next = (current + step + items.length) % items.length;
    items.forEach(function (item, i) { item.setAttribute("aria-selected", i === next ? "true" : "false"); });
    textarea.setAttribute("aria-activedescendant", items[next].id);
  }

  function isBody(el) { return el && el.matches && el.matches(".composer textarea[name=body]"); }

  document.addEventListener("input", function (evt) {
    if (isBody(evt.target)) { offer(evt.target); }
  });

  document.addEventListener("keydown", function (evt) {
    var textarea = evt.target, list = box();
    if (!isBody(textarea) || !list || list.hidden) { return; }
    if (evt.key === "ArrowDown" || evt.key === "ArrowUp") {
      evt.preventDefault();
      move(textarea, evt.key === "ArrowDown" ? 1 : -1);
    } else if (evt.key === "Enter" || evt.key === "Tab") {
      var picked = list.querySelector("[aria-selected=true]");
      if (picked) {
        evt.preventDefault();
        choose(textarea, picked.getAttribute("data-name"));
      }
    } else if (evt.key === "Escape") {
      evt.preventDefault();
      close(textarea);
    }
  });

  document.addEventListener("mousedown", function (evt) {
    var item = evt.target.closest && evt.target.closest("#composer-mentions [role=option]");
    if (!item) { return; }
    evt.preventDefault();  // keep the focus (and the caret) in the text
    var textarea = document.querySelector(".composer textarea[name=body]");
    if (textarea) { choose(textarea, item.getAttribute("data-name")); }
  });

  document.addEventListener("focusout", function (evt) {
    if (isBody(evt.target)) { close(evt.target); }
  });
})();
