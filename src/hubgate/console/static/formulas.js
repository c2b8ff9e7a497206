// The formula instance page follows a running execution: it reloads until the execution
// ends (the server stops asking once it has). The page works without it: reload by hand.
(function () {
  "use strict";
  var timeline = document.querySelector("[data-refresh]");
  if (!timeline) {
    return;
  }
  var wait = parseInt(timeline.getAttribute("data-refresh"), 10) || 1500;
  window.setTimeout(function () {
    window.location.reload();
  }, wait);
})();
