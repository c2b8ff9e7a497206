// Small enhancements; every page works without them.
(function () {
  "use strict";

  function copyText(text) {
    if (navigator.clipboard && window.isSecureContext) {
      return navigator.clipboard.writeText(text);
    }
    // Plain-HTTP hosts other than localhost have no clipboard API: select and copy instead.
    var area = document.createElement("textarea");
    area.value = text;
    area.setAttribute("readonly", "");
    area.style.position = "fixed";
    area.style.opacity = "0";
    document.body.appendChild(area);
    area.select();
    var done = document.execCommand("copy");
    document.body.removeChild(area);
    return done ? Promise.resolve() : Promise.reject(new Error("copy refused"));
  }

  document.querySelectorAll("[data-copy]").forEach(function (button) {
    var target = document.querySelector(button.getAttribute("data-copy"));
    var status = document.querySelector(".copy-status");
    if (!target) {
      return;
    }
    button.hidden = false;
    button.addEventListener("click", function () {
      copyText(target.textContent.trim()).then(
        function () {
          if (status) { status.textContent = "Copied to the clipboard."; }
        },
        function () {
          if (status) { status.textContent = "Could not copy: select the token and copy it by hand."; }
        }
      );
    });
  });

  // The catalog's filter box narrows the list as one types; the form still works without this.
  document.querySelectorAll("input[data-filter]").forEach(function (input) {
    var list = document.querySelector(input.getAttribute("data-filter"));
    var empty = document.getElementById("catalog-empty");
    if (!list) {
      return;
    }
    input.addEventListener("input", function () {
      var words = input.value.toLowerCase().split(/\s+/).filter(Boolean);
      var shown = 0;
      list.querySelectorAll("[data-search]").forEach(function (item) {
        var text = item.getAttribute("data-search");
        var match = words.every(function (word) { return text.indexOf(word) !== -1; });
        item.hidden = !match;
        if (match) { shown += 1; }
      });
      if (empty) { empty.hidden = shown !== 0; }
    });
  });
})();
