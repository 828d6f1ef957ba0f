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
})();
