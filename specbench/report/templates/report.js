// Click a header of a .sortable table to sort by it; click again to reverse.
// Cells carry data-sort (a number, or lower-case text); empty values always sort last.
(function () {
  "use strict";

  function keyOf(row, col, numeric) {
    var cell = row.cells[col];
    var raw = cell ? cell.getAttribute("data-sort") : "";
    if (raw === null || raw === "") {
      return null;
    }
    if (numeric) {
      var value = parseFloat(raw);
      return isNaN(value) ? null : value;
    }
    return raw;
  }

  function sortBy(table, col, numeric, ascending) {
    var body = table.tBodies[0];
    var rows = Array.prototype.slice.call(body.rows);
    var keyed = rows.map(function (row, index) {
      return { row: row, key: keyOf(row, col, numeric), index: index };
    });
    keyed.sort(function (a, b) {
      if (a.key === null && b.key === null) { return a.index - b.index; }
      if (a.key === null) { return 1; }
      if (b.key === null) { return -1; }
      var order = a.key < b.key ? -1 : a.key > b.key ? 1 : 0;
      if (order === 0) { return a.index - b.index; }
      return ascending ? order : -order;
    });
    var fragment = document.createDocumentFragment();
    keyed.forEach(function (item) { fragment.appendChild(item.row); });
    body.appendChild(fragment);
  }

  function setUp(table) {
    var headers = table.tHead ? table.tHead.rows[0].cells : [];
    Array.prototype.forEach.call(headers, function (th, col) {
      th.tabIndex = 0;
      th.setAttribute("role", "columnheader");
      var activate = function () {
        var ascending = th.getAttribute("aria-sort") !== "ascending";
        Array.prototype.forEach.call(headers, function (other) { other.removeAttribute("aria-sort"); });
        th.setAttribute("aria-sort", ascending ? "ascending" : "descending");
        sortBy(table, col, th.getAttribute("data-kind") !== "text", ascending);
      };
      th.addEventListener("click", activate);
      th.addEventListener("keydown", function (event) {
        if (event.key === "Enter" || event.key === " ") {
          event.preventDefault();
          activate();
        }
      });
    });
  }

  document.querySelectorAll("table.sortable").forEach(setUp);

  // Filter: a row stays when its text contains every word typed (case-insensitive).
  function setUpFilter(input) {
    var table = document.getElementById(input.getAttribute("data-table"));
    var count = document.getElementById(input.id + "-count");
    if (!table) { return; }
    var rows = Array.prototype.slice.call(table.tBodies[0].rows);
    var texts = rows.map(function (row) { return row.textContent.toLowerCase(); });
    input.addEventListener("input", function () {
      var words = input.value.toLowerCase().split(/\s+/).filter(function (w) { return w; });
      var shown = 0;
      rows.forEach(function (row, i) {
        var keep = words.every(function (w) { return texts[i].indexOf(w) !== -1; });
        row.hidden = !keep;
        if (keep) { shown += 1; }
      });
      if (count) { count.textContent = words.length ? shown + " of " + rows.length + " rows" : ""; }
    });
  }
  document.querySelectorAll("input.filter").forEach(setUpFilter);

  // Copy buttons: the clipboard API where the page may use it, else select the line
  // so that one Ctrl-C copies it (file:// pages are not always allowed the clipboard).
  function selectText(node) {
    var range = document.createRange();
    range.selectNodeContents(node);
    var selection = window.getSelection();
    selection.removeAllRanges();
    selection.addRange(range);
  }
  function done(button, label) {
    button.textContent = label;
    button.classList.add("done");
    window.setTimeout(function () { button.textContent = "Copy"; button.classList.remove("done"); }, 1500);
  }
  document.querySelectorAll("button.copy").forEach(function (button) {
    button.addEventListener("click", function () {
      var text = button.getAttribute("data-copy") || "";
      var pre = button.parentNode.querySelector("pre");
      var fallback = function () { if (pre) { selectText(pre); } done(button, "Selected"); };
      if (navigator.clipboard && window.isSecureContext) {
        navigator.clipboard.writeText(text).then(function () { done(button, "Copied"); }, fallback);
      } else {
        fallback();
      }
    });
  });
})();
