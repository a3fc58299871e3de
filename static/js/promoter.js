/* Promoter: small progressive enhancements. Every page works without this file.
   - [data-copy="text"]        click copies text to the clipboard, button says "Copied".
   - details.dropdown          closes on outside click / Escape; one open at a time.
   - .dropdown > button[aria-haspopup]  toggles .open (for non-<details> dropdowns).
   - dialog.modal[data-open]   shown with showModal() on load and after every htmx swap.
   - [data-close]              closes the enclosing dialog; dialogs inside #modal-root are removed on close.
   - [data-open-dialog="id"]   opens the dialog with that id.
   - [data-dismiss]            removes the enclosing .banner.
*/
(function () {
  "use strict";

  function copyText(text) {
    if (navigator.clipboard && window.isSecureContext) {
      return navigator.clipboard.writeText(text);
    }
    // Fallback for plain-http intranet hosts, where navigator.clipboard is unavailable.
    return new Promise(function (resolve, reject) {
      var ta = document.createElement("textarea");
      ta.value = text;
      ta.setAttribute("readonly", "");
      ta.style.position = "fixed";
      ta.style.opacity = "0";
      document.body.appendChild(ta);
      ta.select();
      try { document.execCommand("copy") ? resolve() : reject(new Error("copy failed")); }
      catch (e) { reject(e); }
      finally { ta.remove(); }
    });
  }

  function flash(button, text) {
    if (!button.dataset.label) button.dataset.label = button.textContent;
    button.textContent = text;
    button.classList.toggle("copied", text === "Copied");
    clearTimeout(button._promoterTimer);
    button._promoterTimer = setTimeout(function () {
      button.textContent = button.dataset.label;
      button.classList.remove("copied");
    }, 1600);
  }

  function closeDropdowns(except) {
    document.querySelectorAll("details.dropdown[open]").forEach(function (d) {
      if (d !== except) d.removeAttribute("open");
    });
    document.querySelectorAll(".dropdown.open").forEach(function (d) {
      if (d !== except) {
        d.classList.remove("open");
        var b = d.querySelector("[aria-haspopup]");
        if (b) b.setAttribute("aria-expanded", "false");
      }
    });
  }

  function openModals(root) {
    (root || document).querySelectorAll("dialog.modal[data-open]").forEach(function (dialog) {
      if (dialog.open || !dialog.isConnected) return;
      dialog.removeAttribute("data-open");
      if (typeof dialog.showModal === "function") dialog.showModal();
      else dialog.setAttribute("open", "");
      var focus = dialog.querySelector("[autofocus]") ||
        dialog.querySelector(".modal-body input:not([type=hidden]), .modal-body select, .modal-body textarea");
      if (focus) focus.focus();
    });
  }

  // Where the pointer went down: a text selection dragged out of a dialog must not close it.
  var pressedOn = null;
  document.addEventListener("mousedown", function (event) { pressedOn = event.target; });

  document.addEventListener("click", function (event) {
    var target = event.target;
    if (!(target instanceof Element)) return;

    var copy = target.closest("[data-copy]");
    if (copy) {
      event.preventDefault();
      copyText(copy.getAttribute("data-copy")).then(
        function () { flash(copy, "Copied"); },
        function () { flash(copy, "Press Ctrl+C"); }
      );
      return;
    }

    var dismiss = target.closest("[data-dismiss]");
    if (dismiss) {
      var banner = dismiss.closest(".banner");
      if (banner) banner.remove();
      return;
    }

    var close = target.closest("[data-close]");
    if (close) {
      var dlg = close.closest("dialog");
      if (dlg) { event.preventDefault(); dlg.close(); }
      return;
    }

    var opener = target.closest("[data-open-dialog]");
    if (opener) {
      var d = document.getElementById(opener.getAttribute("data-open-dialog"));
      if (d && typeof d.showModal === "function") { event.preventDefault(); d.showModal(); }
      return;
    }

    // Clicking the dark backdrop of a modal closes it (the click lands on the dialog itself).
    if (target.matches("dialog.modal[open]") && pressedOn === target) {
      var r = target.getBoundingClientRect();
      var inside = event.clientX >= r.left && event.clientX <= r.right &&
        event.clientY >= r.top && event.clientY <= r.bottom;
      if (!inside) target.close();
      return;
    }

    var toggle = target.closest(".dropdown > [aria-haspopup]");
    if (toggle && toggle.tagName !== "SUMMARY") {
      var dd = toggle.parentElement;
      var willOpen = !dd.classList.contains("open");
      closeDropdowns(dd);
      dd.classList.toggle("open", willOpen);
      toggle.setAttribute("aria-expanded", String(willOpen));
      return;
    }

    var within = target.closest(".dropdown");
    if (within && target.closest(".dropdown-menu a, .dropdown-menu button")) {
      closeDropdowns();  // an item was chosen
      return;
    }
    closeDropdowns(within);
  });

  // One <details> dropdown open at a time; keep aria-expanded in step for screen readers.
  document.addEventListener("toggle", function (event) {
    var d = event.target;
    if (!(d instanceof HTMLDetailsElement) || !d.classList.contains("dropdown")) return;
    var summary = d.querySelector("summary");
    if (summary) summary.setAttribute("aria-expanded", String(d.open));
    if (d.open) closeDropdowns(d);
  }, true);

  document.addEventListener("keydown", function (event) {
    if (event.key !== "Escape") return;
    var open = document.querySelector("details.dropdown[open], .dropdown.open");
    if (open) {
      closeDropdowns();
      var s = open.querySelector("summary, [aria-haspopup]");
      if (s) s.focus();
    }
  });

  // Dialogs swapped into #modal-root are throw-away: remove them once closed,
  // so the next hx-get starts from a clean form.
  document.addEventListener("close", function (event) {
    var d = event.target;
    if (d instanceof HTMLDialogElement && d.closest("#modal-root")) d.remove();
  }, true);

  document.addEventListener("DOMContentLoaded", function () { openModals(document); });
  document.addEventListener("htmx:afterSwap", function () { openModals(document); });
  document.addEventListener("htmx:oobAfterSwap", function () { openModals(document); });
})();
