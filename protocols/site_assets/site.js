/* hashbench results site: sortable and filterable tables, plots from the page's JSON, record pop-ups.
   Plain JavaScript, no network: the page's data is in <script id="page-data">, plotly.min.js beside this file. */
"use strict";

function sortKey(cell) {
  var raw = cell.hasAttribute("data-sort") ? cell.getAttribute("data-sort") : cell.textContent.trim();
  if (raw === "" || raw === "–") return null;
  var number = Number(raw);
  return isNaN(number) ? raw.toLowerCase() : number;
}

function compareKeys(a, b) {
  if (a === null && b === null) return 0;
  if (a === null) return 1;  // empty cells last, whichever the direction
  if (b === null) return -1;
  if (typeof a === typeof b) return a < b ? -1 : a > b ? 1 : 0;
  return typeof a === "number" ? -1 : 1;
}

function makeSortable(table) {
  var headers = table.querySelectorAll("thead th");
  headers.forEach(function (th, column) {
    th.setAttribute("tabindex", "0");
    // the glossary's text (the template's title) stays; the sorting hint follows it
    th.title = (th.title ? th.title + "\n" : "") + "click to sort by " + th.textContent;
    var sort = function () {
      var ascending = th.getAttribute("aria-sort") !== "ascending";
      headers.forEach(function (other) { other.removeAttribute("aria-sort"); });
      th.setAttribute("aria-sort", ascending ? "ascending" : "descending");
      var body = table.tBodies[0];
      var rows = Array.prototype.slice.call(body.rows);
      rows.forEach(function (row, i) { row.dataset.position = i; });
      rows.sort(function (r1, r2) {
        var k1 = sortKey(r1.cells[column]), k2 = sortKey(r2.cells[column]);
        var order = compareKeys(k1, k2);
        if (k1 !== null && k2 !== null && !ascending) order = -order;
        return order || r1.dataset.position - r2.dataset.position;  // stable
      });
      rows.forEach(function (row) { body.appendChild(row); });
    };
    th.addEventListener("click", sort);
    th.addEventListener("keydown", function (event) { if (event.key === "Enter") sort(); });
  });
}

/* A filter box above a table: keep the rows whose text holds every word typed (any case, any order). */
function makeFilter(input) {
  var table = document.getElementById(input.getAttribute("data-table"));
  var count = document.querySelector(".filter-count[data-table='" + input.getAttribute("data-table") + "']");
  if (!table) return;
  var apply = function () {
    var words = input.value.toLowerCase().split(/\s+/).filter(function (w) { return w.length > 0; });
    var rows = Array.prototype.slice.call(table.tBodies[0].rows), shown = 0;
    rows.forEach(function (row) {
      var text = row.textContent.toLowerCase();
      var keep = words.every(function (w) { return text.indexOf(w) >= 0; });
      row.hidden = !keep;
      if (keep) shown++;
    });
    if (count) count.textContent = words.length ? shown + " of " + rows.length + " rows" : "";
  };
  input.addEventListener("input", apply);
  apply();
}

function element(tag, attrs, text) {
  var node = document.createElement(tag);
  Object.keys(attrs || {}).forEach(function (key) { node.setAttribute(key, attrs[key]); });
  if (text !== undefined) node.textContent = text;
  return node;
}

var PROVENANCE = ["method", "index", "params", "bits", "code_bits", "search", "variant", "db_size", "seed",
                  "train_seed", "topk", "split_sha256", "versions", "machine", "fit_info", "git", "git_commit",
                  "threads", "threads_all", "cpu", "cores", "timestamp"];

function showRecords(ids, records) {
  var popup = document.getElementById("popup");
  var body = popup.querySelector(".popup-body");
  body.textContent = "";
  body.appendChild(element("h2", {}, ids.length === 1 ? "The record behind this number"
                                                      : "The " + ids.length + " records behind this number"));
  ids.forEach(function (id) {
    var entry = records[id];
    var box = element("section", {"class": "record"});
    var link = element("a", {"href": entry ? entry.href : "#", "class": "record-link"}, id);
    box.appendChild(element("h3")).appendChild(link);
    if (entry) {
      var list = element("dl");
      var fields = entry.fields;
      var keys = PROVENANCE.filter(function (k) { return k in fields; })
        .concat(Object.keys(fields).sort().filter(function (k) { return PROVENANCE.indexOf(k) < 0; }));
      keys.forEach(function (key) {
        var value = fields[key];
        list.appendChild(element("dt", {}, key));
        list.appendChild(element("dd", {}, typeof value === "object" && value !== null ? JSON.stringify(value)
                                                                                      : String(value)));
      });
      box.appendChild(list);
    }
    body.appendChild(box);
  });
  popup.hidden = false;
  popup.querySelector("button").focus();
}

function setUpPopup() {
  var popup = element("div", {"id": "popup", "role": "dialog", "aria-modal": "true"});
  popup.hidden = true;
  var box = element("div", {"class": "popup-box"});
  var close = element("button", {"type": "button", "class": "close", "aria-label": "close"}, "×");
  box.appendChild(close);
  box.appendChild(element("div", {"class": "popup-body"}));
  popup.appendChild(box);
  document.body.appendChild(popup);
  var hide = function () { popup.hidden = true; };
  close.addEventListener("click", hide);
  popup.addEventListener("click", function (event) { if (event.target === popup) hide(); });
  document.addEventListener("keydown", function (event) { if (event.key === "Escape") hide(); });
}

document.addEventListener("DOMContentLoaded", function () {
  var data = JSON.parse(document.getElementById("page-data").textContent);
  setUpPopup();
  document.querySelectorAll("table.sortable").forEach(makeSortable);
  document.querySelectorAll("input.filter").forEach(makeFilter);
  document.querySelectorAll("[data-records]").forEach(function (node) {
    var open = function (event) {
      if (!Object.keys(data.records).length) return;
      event.preventDefault();
      showRecords(node.getAttribute("data-records").split(" "), data.records);
    };
    node.addEventListener("click", open);
    node.addEventListener("keydown", function (event) { if (event.key === "Enter") open(event); });
  });
  data.plots.forEach(function (plot) {
    var div = document.getElementById(plot.id);
    Plotly.newPlot(div, plot.data, plot.layout, plot.config).then(function () {
      div.setAttribute("data-ready", "1");
    });
    div.on("plotly_click", function (event) {
      var point = event.points[0];
      if (point && Array.isArray(point.customdata)) showRecords(point.customdata, data.records);
    });
  });
});
