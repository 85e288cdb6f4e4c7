// fairshare dashboard: the few behaviours that need script (htmx does the rest).
// Map: show the hovered or focused state's details in the panel beside the map, so that
// keyboard users get what the tooltip shows to mouse users.
(function () {
  "use strict";
  function show(event) {
    var state = event.target.closest ? event.target.closest(".state") : null;
    var panel = document.getElementById("map-detail");
    if (state && panel) {
      panel.textContent = state.getAttribute("aria-label");
    }
  }
  document.addEventListener("focusin", show);
  document.addEventListener("mouseover", show);
  // Add another family member row on the registration form.
  document.addEventListener("click", function (event) {
    var button = event.target.closest ? event.target.closest("[data-add-member]") : null;
    if (!button) { return; }
    event.preventDefault();
    var list = document.getElementById("members");
    var template = document.getElementById("member-template");
    if (!list || !template) { return; }
    var index = list.querySelectorAll(".member").length;
    var html = template.innerHTML.split("__i__").join(String(index)).split("__n__").join(String(index + 1));
    list.insertAdjacentHTML("beforeend", html);
    var count = document.getElementById("member_count");
    if (count) { count.value = String(index + 1); }
    var first = list.querySelectorAll(".member")[index].querySelector("input");
    if (first) { first.focus(); }
  });
})();
