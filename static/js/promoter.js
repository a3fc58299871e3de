/* Promoter: small progressive enhancements. Every page works without this file.
   - [data-copy="text"]        click copies text to the clipboard, button says "Copied".
   - details.dropdown          a menu button: role="menu" and the menu keyboard pattern
                               (Enter/Space/ArrowDown open, arrows, Home/End, Esc, Tab);
                               closes on outside click; one open at a time.
   - dialog.modal[data-open]   shown with showModal() on load and after every htmx swap.
   - [data-close]              closes the enclosing dialog; dialogs inside #modal-root are removed on close.
   - [data-open-dialog="id"]   opens the dialog with that id.
   - Ctrl+Enter (⌘+Enter)      submits the form of the open dialog.
   - focus                     after Esc or Close, focus returns to the control that opened the dialog.
   - [data-dismiss]            removes the enclosing .banner.
   - [data-theme-toggle]       switches light/dark and remembers it (see theme.js).
   - form.selection-form       Promote selected: [data-select-all="name"] ticks every checkbox
                               of that name; [data-selected-count] says how many are ticked.
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

  /* ---------- theme ---------- */
  var root = document.documentElement;
  var darkQuery = window.matchMedia ? window.matchMedia("(prefers-color-scheme: dark)") : null;

  function isDark() {
    if (root.classList.contains("theme-dark")) return true;
    if (root.classList.contains("theme-light")) return false;
    return !!(darkQuery && darkQuery.matches);
  }

  function syncThemeToggles() {
    var dark = String(isDark());
    document.querySelectorAll("[data-theme-toggle]").forEach(function (b) {
      b.setAttribute("aria-pressed", dark);
    });
  }

  function toggleTheme() {
    var next = isDark() ? "light" : "dark";
    root.classList.remove("theme-dark", "theme-light");
    root.classList.add("theme-" + next);
    try { window.localStorage.setItem("promoter-theme", next); } catch (e) { /* not remembered */ }
    syncThemeToggles();
  }

  if (darkQuery && darkQuery.addEventListener) darkQuery.addEventListener("change", syncThemeToggles);

  /* ---------- menus (details.dropdown) ---------- */
  function menuItems(dropdown) {
    var menu = dropdown.querySelector(".dropdown-menu");
    if (!menu) return [];
    return Array.prototype.filter.call(
      menu.querySelectorAll("a[href], button:not([disabled])"),
      function (el) { return el.closest(".dropdown-menu") === menu; }
    );
  }

  // The roles are added here, not in the markup: without JavaScript a <details> is a plain
  // disclosure whose links are reached with Tab, and announcing it as a menu would mislead.
  function enhanceMenus(scope) {
    (scope || document).querySelectorAll("details.dropdown").forEach(function (d) {
      if (d.dataset.menu) return;
      d.dataset.menu = "1";
      var summary = d.querySelector("summary");
      var menu = d.querySelector(".dropdown-menu");
      if (!summary || !menu) return;
      summary.setAttribute("aria-haspopup", "menu");
      summary.setAttribute("aria-expanded", String(d.open));
      if (!menu.id) menu.id = (d.id || "menu-" + Math.random().toString(36).slice(2)) + "-menu";
      summary.setAttribute("aria-controls", menu.id);
      menu.setAttribute("role", "menu");
      menuItems(d).forEach(function (item) {
        item.setAttribute("role", "menuitem");
        item.setAttribute("tabindex", "-1");
      });
    });
  }

  // The "toggle" event comes later (a queued task): set aria-expanded at once as well, so a
  // screen reader (or anything reading the attribute right after the key) sees the truth.
  function setExpanded(dropdown) {
    var s = dropdown.querySelector("summary");
    if (s) s.setAttribute("aria-expanded", String(dropdown.open));
  }

  function openMenu(dropdown, focusIndex) {
    closeDropdowns(dropdown);
    dropdown.open = true;
    setExpanded(dropdown);
    var items = menuItems(dropdown);
    if (!items.length) return;
    var i = focusIndex < 0 ? items.length + focusIndex : focusIndex;
    items[Math.max(0, Math.min(i, items.length - 1))].focus();
  }

  function closeMenu(dropdown, returnFocus) {
    dropdown.open = false;
    setExpanded(dropdown);
    if (returnFocus) {
      var s = dropdown.querySelector("summary");
      if (s) s.focus();
    }
  }

  function closeDropdowns(except) {
    document.querySelectorAll("details.dropdown[open]").forEach(function (d) {
      if (d !== except) d.removeAttribute("open");
    });
  }

  document.addEventListener("keydown", function (event) {
    var target = event.target;
    if (!(target instanceof Element)) return;

    // The menu button.
    if (target.matches("details.dropdown > summary")) {
      var dd = target.parentElement;
      if (event.key === "ArrowDown" || event.key === "Enter" || event.key === " ") {
        event.preventDefault();
        if (dd.open && event.key !== "ArrowDown") closeMenu(dd, false);
        else openMenu(dd, 0);
      } else if (event.key === "ArrowUp") {
        event.preventDefault();
        openMenu(dd, -1);
      } else if (event.key === "Escape" && dd.open) {
        event.preventDefault();
        closeMenu(dd, true);
      }
      return;
    }

    // An item of an open menu.
    var item = target.closest("details.dropdown [role=menuitem]");
    if (item) {
      var dropdown = item.closest("details.dropdown");
      var items = menuItems(dropdown);
      var at = items.indexOf(item);
      var next = null;
      switch (event.key) {
        case "ArrowDown": next = items[(at + 1) % items.length]; break;
        case "ArrowUp": next = items[(at - 1 + items.length) % items.length]; break;
        case "Home": next = items[0]; break;
        case "End": next = items[items.length - 1]; break;
        case "Escape":
          event.preventDefault();
          closeMenu(dropdown, true);
          return;
        case "Tab":
          closeMenu(dropdown, false);
          return;
        case " ":
          event.preventDefault();
          item.click();
          return;
        default:
          return;
      }
      event.preventDefault();
      if (next) next.focus();
      return;
    }

    // Ctrl+Enter (⌘+Enter on a Mac) submits the open dialog's form with its primary button.
    if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) {
      var dialog = target.closest("dialog[open]");
      if (!dialog) return;
      var form = target.form || dialog.querySelector("form");
      if (!form) return;
      var submitter = null;
      // The primary button (Promote), not a secondary one such as Preview.
      if (form.id) submitter = dialog.querySelector('button.btn-primary[form="' + form.id + '"]') ||
        dialog.querySelector('button[form="' + form.id + '"]:not([type=button])');
      if (!submitter) submitter = form.querySelector("button:not([type=button]), [type=submit]");
      event.preventDefault();
      if (typeof form.requestSubmit === "function") form.requestSubmit(submitter || undefined);
      else if (submitter) submitter.click();
    }
  });

  /* ---------- dialogs ---------- */
  // The control that opened the current dialog: focus goes back to it when the dialog closes,
  // also when the dialog was replaced meanwhile (Promote → progress → Run again).
  var opener = null;

  function openerFor(element) {
    var dropdown = element.closest(".dropdown");
    if (dropdown) return dropdown.querySelector("summary, [aria-haspopup]") || element;
    return element;
  }

  function focusInto(dialog) {
    var focus = dialog.querySelector("[autofocus]") ||
      dialog.querySelector(".modal-body input:not([type=hidden]), .modal-body select, .modal-body textarea") ||
      dialog.querySelector(".modal-footer .btn, .modal-close");
    if (focus) focus.focus();
  }

  function openModals(scope) {
    (scope || document).querySelectorAll("dialog.modal[data-open]").forEach(function (dialog) {
      if (dialog.open || !dialog.isConnected) return;
      dialog.removeAttribute("data-open");
      if (typeof dialog.showModal === "function") dialog.showModal();
      else dialog.setAttribute("open", "");
      focusInto(dialog);
    });
  }

  function restoreFocus() {
    // A dialog replaced by the next one (htmx swap) is not the end: wait until none is open.
    setTimeout(function () {
      if (document.querySelector("dialog.modal[open]")) return;
      if (opener && opener.isConnected) opener.focus();
      opener = null;
    }, 0);
  }

  // A dialog answered with 400 (a form error, e.g. a comment too long) still shows, with its
  // message: htmx 2 leaves 4xx answers unswapped by default.
  document.addEventListener("htmx:beforeSwap", function (event) {
    var detail = event.detail;
    if (detail && detail.xhr && detail.xhr.status === 400 && detail.target && detail.target.id === "modal-root") {
      detail.shouldSwap = true;
      detail.isError = false;
    }
  });

  document.addEventListener("htmx:beforeRequest", function (event) {
    var elt = event.detail && event.detail.elt;
    var target = event.detail && event.detail.target;
    if (!(elt instanceof Element) || !target || target.id !== "modal-root") return;
    if (elt.closest("dialog")) return;  // asked from inside a dialog: keep the first opener
    opener = openerFor(elt);
  });

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

    if (target.closest("[data-theme-toggle]")) {
      toggleTheme();
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

    var openButton = target.closest("[data-open-dialog]");
    if (openButton) {
      var d = document.getElementById(openButton.getAttribute("data-open-dialog"));
      if (d && typeof d.showModal === "function") {
        event.preventDefault();
        opener = openButton;
        d.showModal();
        focusInto(d);
      }
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

    var within = target.closest(".dropdown");
    if (within && target.closest(".dropdown-menu a, .dropdown-menu button")) {
      closeDropdowns();  // an item was chosen
      return;
    }
    closeDropdowns(within);
  });

  // One menu open at a time; keep aria-expanded in step for screen readers.
  document.addEventListener("toggle", function (event) {
    var d = event.target;
    if (!(d instanceof HTMLDetailsElement) || !d.classList.contains("dropdown")) return;
    var summary = d.querySelector("summary");
    if (summary) summary.setAttribute("aria-expanded", String(d.open));
    if (d.open) closeDropdowns(d);
  }, true);

  // Esc anywhere closes an open menu and puts focus back on its button.
  document.addEventListener("keydown", function (event) {
    if (event.key !== "Escape" || event.defaultPrevented) return;
    var open = document.querySelector("details.dropdown[open]");
    if (open) closeMenu(open, true);
  });

  // Dialogs swapped into #modal-root are throw-away: remove them once closed,
  // so the next hx-get starts from a clean form. Then focus goes back to the opener.
  document.addEventListener("close", function (event) {
    var d = event.target;
    if (!(d instanceof HTMLDialogElement)) return;
    if (d.closest("#modal-root")) d.remove();
    restoreFocus();
  }, true);

  /* ---------- Promote selected ---------- */
  // form.elements includes checkboxes tied to the form by their form="" attribute (the
  // board's tables hold per-row forms of their own, so their checkboxes live outside it).
  function checkboxes(form, filter) {
    return Array.prototype.filter.call(form.elements, function (el) {
      return el instanceof HTMLInputElement && el.type === "checkbox" && filter(el);
    });
  }

  function updateSelection(form) {
    var all = checkboxes(form, function (c) { return c.hasAttribute("data-select-all"); })[0];
    var name = all ? all.getAttribute("data-select-all") : "image";
    var boxes = checkboxes(form, function (c) { return c.name === name; });
    var ticked = boxes.filter(function (c) { return c.checked; }).length;
    if (all) {
      all.checked = ticked > 0 && ticked === boxes.length;
      all.indeterminate = ticked > 0 && ticked < boxes.length;
    }
    var count = form.querySelector("[data-selected-count]");
    if (count) count.textContent = ticked ? ticked + " selected" : "";
  }

  document.addEventListener("change", function (event) {
    var box = event.target;
    if (!(box instanceof HTMLInputElement) || box.type !== "checkbox") return;
    var form = box.form;
    if (!form || !form.classList.contains("selection-form")) return;
    var name = box.getAttribute("data-select-all");
    if (name) {
      checkboxes(form, function (c) { return c.name === name; }).forEach(function (c) {
        c.checked = box.checked;
      });
    }
    updateSelection(form);
  });

  function ready(scope) {
    enhanceMenus(scope);
    openModals(scope);
  }

  document.addEventListener("DOMContentLoaded", function () {
    syncThemeToggles();
    ready(document);
  });
  document.addEventListener("htmx:afterSwap", function () { ready(document); });
  document.addEventListener("htmx:oobAfterSwap", function () { ready(document); });
})();
