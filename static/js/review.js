// Reviewer queue: a "select all" box for bulk approval. Without JavaScript the box stays
// hidden and each visit is ticked one by one.
(function () {
  "use strict";
  var all = document.querySelector("[data-select-all]");
  if (!all) {
    return;
  }
  var boxes = Array.prototype.slice.call(document.querySelectorAll("input.select-visit"));
  if (!boxes.length) {
    return;
  }
  all.hidden = false;
  var label = document.querySelector("label[for='" + all.id + "']");
  if (label) {
    label.hidden = false;
  }
  function sync() {
    var checked = boxes.filter(function (box) { return box.checked; }).length;
    all.checked = checked === boxes.length;
    all.indeterminate = checked > 0 && checked < boxes.length;
  }
  all.addEventListener("change", function () {
    boxes.forEach(function (box) { box.checked = all.checked; });
  });
  boxes.forEach(function (box) { box.addEventListener("change", sync); });
  sync();
})();
