// Filter boxes of the generated pages (fcast_assets/site/build.py): <input class="fc-filter" data-target=ID>.
// Terms are separated by spaces and all must match. On a correspondence table a term that names a value column
// keeps the matching columns; any other term keeps the rows whose model, scenario, statuses, exception or message
// contain it (e.g. "MLP error [80]"). On a list table every term must appear in the row.
(function () {
  function norm(s) { return (s || "").toLowerCase(); }

  function cellText(td) {
    return norm(td.textContent + " " + (td.getAttribute("data-status") || "") + " " + (td.getAttribute("title") || ""));
  }

  function filterMatrix(table, terms) {
    var heads = Array.prototype.slice.call(table.querySelectorAll("thead th"));
    var valueIdx = [];
    heads.forEach(function (th, i) { if (th.classList.contains("fc-value")) valueIdx.push(i); });
    var colTerms = terms.filter(function (t) {
      return valueIdx.some(function (i) { return norm(heads[i].textContent).indexOf(t) >= 0; });
    });
    var rowTerms = terms.filter(function (t) { return colTerms.indexOf(t) < 0; });
    var showCol = {};
    valueIdx.forEach(function (i) {
      var h = norm(heads[i].textContent);
      showCol[i] = !colTerms.length || colTerms.some(function (t) { return h.indexOf(t) >= 0; });
      heads[i].style.display = showCol[i] ? "" : "none";
    });
    var shown = 0;
    table.querySelectorAll("tbody tr").forEach(function (tr) {
      var cells = Array.prototype.slice.call(tr.children);
      var txt = "";
      cells.forEach(function (c, i) {
        var visible = showCol[i] === undefined || showCol[i];
        c.style.display = visible ? "" : "none";
        if (visible) txt += " " + cellText(c);
      });
      var ok = rowTerms.every(function (t) { return txt.indexOf(t) >= 0; });
      tr.style.display = ok ? "" : "none";
      if (ok) shown += 1;
    });
    return shown;
  }

  function filterList(table, terms) {
    var shown = 0;
    table.querySelectorAll("tbody tr").forEach(function (tr) {
      var txt = norm(tr.textContent);
      var ok = terms.every(function (t) { return txt.indexOf(t) >= 0; });
      tr.style.display = ok ? "" : "none";
      if (ok) shown += 1;
    });
    return shown;
  }

  function apply(input) {
    var table = document.getElementById(input.getAttribute("data-target"));
    if (!table) return;
    var terms = norm(input.value).split(/\s+/).filter(Boolean);
    var shown = table.classList.contains("fc-matrix") ? filterMatrix(table, terms) : filterList(table, terms);
    var count = input.parentNode.querySelector(".fc-count");
    if (count) count.textContent = terms.length ? shown + " rows shown" : "";
  }

  function init() {
    document.querySelectorAll("input.fc-filter").forEach(function (input) {
      if (input.dataset.fcReady) return;
      input.dataset.fcReady = "1";
      input.addEventListener("input", function () { apply(input); });
      var q = new URLSearchParams(window.location.search).get("filter");
      if (q) { input.value = q; apply(input); }
    });
  }

  if (window.document$ && window.document$.subscribe) window.document$.subscribe(init);  // Material's page event
  else if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", init);
  else init();
})();
