/* Runs before the first paint: marks that JavaScript runs (html.js shows JS-only controls)
   and applies the theme remembered by the toggle in the top bar ("dark" or "light");
   without a remembered choice the stylesheet follows prefers-color-scheme. */
(function () {
  "use strict";
  var root = document.documentElement;
  root.classList.add("js");
  try {
    var theme = window.localStorage.getItem("promoter-theme");
    if (theme === "dark" || theme === "light") root.classList.add("theme-" + theme);
  } catch (e) { /* storage blocked: follow the system setting */ }
})();
