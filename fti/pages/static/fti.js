/* The fti pages' one script: follow Airflow's theme, and make tables sortable, filterable
   and paginated; copy buttons. No dependencies. Loaded in <head> (the theme is set before the
   page paints); the rest runs once the document is parsed. */
(function () {
  "use strict";

  // ---- theme: Airflow's UI (the parent frame, same origin) puts "light" or "dark" on its
  // <html> and keeps the choice in localStorage "theme" ("system": the OS decides). Without
  // either, the stylesheet follows prefers-color-scheme.
  function airflowTheme() {
    try {
      if (window.parent !== window) {
        var classes = window.parent.document.documentElement.classList;
        if (classes.contains("dark")) return "dark";
        if (classes.contains("light")) return "light";
      }
    } catch (e) { /* another origin: fall through */ }
    try {
      var stored = window.localStorage.getItem("theme");
      if (stored === "dark" || stored === "light") return stored;
    } catch (e) { /* storage blocked */ }
    return null;
  }
  function applyTheme() {
    var theme = airflowTheme();
    var root = document.documentElement;
    root.classList.remove("dark", "light");
    if (theme) root.classList.add(theme);
  }
  applyTheme();
  window.addEventListener("storage", function (event) { if (event.key === "theme") applyTheme(); });
  try {
    if (window.parent !== window && window.MutationObserver) {
      new MutationObserver(applyTheme).observe(window.parent.document.documentElement, {
        attributes: true, attributeFilter: ["class"]
      });
    }
  } catch (e) { /* another origin */ }

  // ---- tables -----------------------------------------------------------------------------
  function cellValue(cell) {
    if (!cell) return "";
    var sort = cell.getAttribute("data-sort");
    return sort !== null ? sort : cell.textContent.replace(/\s+/g, " ").trim();
  }
  function numberOf(text) {
    if (text === "" || text === "\u2013") return null;
    var cleaned = text.replace(/,/g, "").replace(/\u2212/g, "-");
    return /^-?\d+(\.\d+)?([eE][-+]?\d+)?$/.test(cleaned) ? parseFloat(cleaned) : NaN;
  }
  function compare(a, b, numeric) {
    if (numeric) {
      var x = numberOf(a), y = numberOf(b);
      if (x === null && y === null) return 0;
      if (x === null) return 1;
      if (y === null) return -1;
      return x - y;
    }
    return a.localeCompare(b, undefined, { numeric: true, sensitivity: "base" });
  }

  function Table(table) {
    this.table = table;
    this.body = table.tBodies[0];
    this.rows = Array.prototype.slice.call(this.body.rows).filter(function (r) { return !r.classList.contains("empty"); });
    this.original = this.rows.slice();
    this.size = parseInt(table.getAttribute("data-page-size") || "20", 10);
    this.page = 0;
    this.query = "";
    this.filters = {};
    this.name = table.getAttribute("data-name") || "rows";
    if (!this.rows.length) return;
    this.build();
    this.update();
  }

  Table.prototype.build = function () {
    var self = this;
    var headers = Array.prototype.slice.call(this.table.tHead.rows[0].cells);
    var tools = document.createElement("div");
    tools.className = "table-tools";
    var search = document.createElement("input");
    search.type = "search";
    search.placeholder = "Filter " + this.name + "\u2026";
    search.setAttribute("aria-label", "Filter " + this.name);
    search.addEventListener("input", function () { self.query = search.value.toLowerCase(); self.page = 0; self.update(); });
    tools.appendChild(search);
    headers.forEach(function (th, index) {
      var label = th.textContent.trim();
      if (th.hasAttribute("data-filter")) {
        var values = {};
        self.rows.forEach(function (row) {
          var cell = row.cells[index];
          var value = cell ? (cell.getAttribute("data-filter-value") || cellValue(cell)) : "";
          if (value) values[value] = true;
        });
        var names = Object.keys(values).sort(function (a, b) { return compare(a, b, false); });
        if (names.length > 1) {
          var wrap = document.createElement("label");
          wrap.className = "field";
          wrap.textContent = label;
          var select = document.createElement("select");
          select.setAttribute("data-column", index);
          var all = document.createElement("option");
          all.value = "";
          all.textContent = "all";
          select.appendChild(all);
          names.forEach(function (name) {
            var option = document.createElement("option");
            option.value = name;
            option.textContent = name;
            select.appendChild(option);
          });
          select.addEventListener("change", function () {
            if (select.value) self.filters[index] = select.value; else delete self.filters[index];
            self.page = 0;
            self.update();
          });
          wrap.appendChild(select);
          tools.appendChild(wrap);
        }
      }
      if (!th.hasAttribute("data-nosort")) {
        var button = document.createElement("button");
        button.type = "button";
        button.className = "sort";
        while (th.firstChild) button.appendChild(th.firstChild);
        th.appendChild(button);
        th.setAttribute("aria-sort", "none");
        button.addEventListener("click", function () { self.sort(index, th); });
      }
    });
    this.count = document.createElement("span");
    this.count.className = "count";
    this.count.setAttribute("aria-live", "polite");
    tools.appendChild(this.count);
    var wrapper = this.table.closest(".table-wrap") || this.table;
    wrapper.parentNode.insertBefore(tools, wrapper);
    this.headers = headers;
    this.pager = document.createElement("div");
    this.pager.className = "pager";
    this.previous = this.button("\u2190 Previous", -1);
    this.status = document.createElement("span");
    this.next = this.button("Next \u2192", 1);
    this.pager.appendChild(this.previous);
    this.pager.appendChild(this.status);
    this.pager.appendChild(this.next);
    wrapper.parentNode.insertBefore(this.pager, wrapper.nextSibling);
    this.emptyRow = document.createElement("tr");
    this.emptyRow.className = "empty";
    var td = document.createElement("td");
    td.colSpan = headers.length;
    td.textContent = "No " + this.name + " match the filter.";
    this.emptyRow.appendChild(td);
  };

  Table.prototype.button = function (text, step) {
    var self = this;
    var button = document.createElement("button");
    button.type = "button";
    button.textContent = text;
    button.addEventListener("click", function () { self.page += step; self.update(); });
    return button;
  };

  Table.prototype.sort = function (index, th) {
    var state = th.getAttribute("aria-sort");
    var next = state === "ascending" ? "descending" : state === "descending" ? "none" : "ascending";
    this.headers.forEach(function (h) { if (h.hasAttribute("aria-sort")) h.setAttribute("aria-sort", "none"); });
    th.setAttribute("aria-sort", next);
    if (next === "none") {
      this.rows = this.original.slice();
    } else {
      var values = this.rows.map(function (row) { return cellValue(row.cells[index]); });
      var numeric = values.every(function (v) { var n = numberOf(v); return n === null || !isNaN(n); });
      var sign = next === "ascending" ? 1 : -1;
      var keyed = this.rows.map(function (row, i) { return { row: row, value: values[i], i: i }; });
      keyed.sort(function (a, b) { return sign * compare(a.value, b.value, numeric) || a.i - b.i; });
      this.rows = keyed.map(function (k) { return k.row; });
    }
    this.page = 0;
    this.update();
  };

  Table.prototype.matches = function (row) {
    for (var index in this.filters) {
      var cell = row.cells[index];
      var value = cell ? (cell.getAttribute("data-filter-value") || cellValue(cell)) : "";
      if (value !== this.filters[index]) return false;
    }
    return !this.query || row.textContent.toLowerCase().indexOf(this.query) !== -1;
  };

  Table.prototype.update = function () {
    var self = this;
    var shown = this.rows.filter(function (row) { return self.matches(row); });
    var pages = Math.max(1, Math.ceil(shown.length / this.size));
    this.page = Math.min(Math.max(this.page, 0), pages - 1);
    var first = this.page * this.size;
    var visible = shown.slice(first, first + this.size);
    while (this.body.firstChild) this.body.removeChild(this.body.firstChild);
    visible.forEach(function (row) { self.body.appendChild(row); });
    if (!visible.length) this.body.appendChild(this.emptyRow);
    var total = this.original.length;
    this.count.textContent = shown.length === total
      ? total + " " + this.name
      : shown.length + " of " + total + " " + this.name;
    this.pager.hidden = pages <= 1;
    this.status.textContent = shown.length
      ? (first + 1) + "\u2013" + (first + visible.length) + " of " + shown.length
      : "";
    this.previous.disabled = this.page === 0;
    this.next.disabled = this.page >= pages - 1;
  };

  // ---- copy buttons -------------------------------------------------------------------------
  function copy(button) {
    var text = button.getAttribute("data-copy");
    function done() {
      button.classList.add("copied");
      button.setAttribute("aria-label", "Copied");
      var icon = button.innerHTML;
      button.textContent = "\u2713";
      setTimeout(function () {
        button.classList.remove("copied");
        button.innerHTML = icon;
        button.setAttribute("aria-label", button.getAttribute("data-label") || "Copy");
      }, 1500);
    }
    function fallback() {
      var area = document.createElement("textarea");
      area.value = text;
      area.setAttribute("readonly", "");
      area.style.position = "fixed";
      area.style.opacity = "0";
      document.body.appendChild(area);
      area.select();
      try { document.execCommand("copy"); done(); } catch (e) { /* nothing to do */ }
      document.body.removeChild(area);
    }
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(text).then(done, fallback);
    } else {
      fallback();
    }
  }

  document.addEventListener("click", function (event) {
    var button = event.target.closest && event.target.closest("button[data-copy]");
    if (button) copy(button);
  });

  document.addEventListener("DOMContentLoaded", function () {
    Array.prototype.forEach.call(document.querySelectorAll("table[data-table]"), function (table) {
      table.ftiTable = new Table(table);
    });
  });
})();
