// Setia console charts: every [data-chart] element fetches its data-src JSON and draws it
// with the vendored Chart.js (or, for "heatmap", as a table with coloured cells). Each chart
// also gets a table of the same numbers (in a <details>) for screen readers, and an empty
// state when there is nothing to show. Nothing is fetched from outside this site.
(function () {
  "use strict";

  function text(tag, value, cls) {
    var el = document.createElement(tag);
    el.textContent = value === null || value === undefined ? "—" : String(value);
    if (cls) { el.className = cls; }
    return el;
  }

  function numberFormat() {
    var lang = document.documentElement.getAttribute("lang") || "id";
    var tag = { id: "id-ID", ms: "ms-MY", en: "en-US" }[lang] || lang;
    try { return new Intl.NumberFormat(tag); } catch (e) { return new Intl.NumberFormat(); }
  }

  function dataTable(data, unit) {
    var fmt = numberFormat();
    var table = document.createElement("table");
    var head = document.createElement("tr");
    head.appendChild(text("th", unit || ""));
    data.datasets.forEach(function (ds) { head.appendChild(text("th", ds.label, "num")); });
    var thead = document.createElement("thead");
    thead.appendChild(head);
    table.appendChild(thead);
    var body = document.createElement("tbody");
    data.labels.forEach(function (label, i) {
      var tr = document.createElement("tr");
      var th = text("th", label);
      th.setAttribute("scope", "row");
      tr.appendChild(th);
      data.datasets.forEach(function (ds) {
        var v = ds.data[i];
        tr.appendChild(text("td", typeof v === "number" ? fmt.format(v) : v, "num"));
      });
      body.appendChild(tr);
    });
    table.appendChild(body);
    return table;
  }

  function heatColour(share) {
    // white to the brand's teal; dark text stays readable up to the darkest cell
    var s = Math.max(0, Math.min(1, share || 0));
    var light = Math.round(97 - s * 55);
    return "hsl(174, 60%, " + light + "%)";
  }

  function heatmap(data) {
    var fmt = numberFormat();
    var table = document.createElement("table");
    table.className = "heatmap";
    var head = document.createElement("tr");
    data.columns.forEach(function (c, i) {
      var th = text("th", c, i > 0 ? "num" : "");
      th.setAttribute("scope", "col");
      head.appendChild(th);
    });
    var thead = document.createElement("thead");
    thead.appendChild(head);
    table.appendChild(thead);
    var body = document.createElement("tbody");
    data.rows.forEach(function (row) {
      var tr = document.createElement("tr");
      var th = text("th", row.cohort);
      th.setAttribute("scope", "row");
      tr.appendChild(th);
      tr.appendChild(text("td", fmt.format(row.size), "num"));
      row.cells.forEach(function (cell) {
        var td = text("td", cell.text, "num heat");
        td.style.background = heatColour(cell.share);
        if ((cell.share || 0) > 0.6) { td.style.color = "#fff"; }
        td.title = fmt.format(cell.members);
        tr.appendChild(td);
      });
      body.appendChild(tr);
    });
    table.appendChild(body);
    return table;
  }

  function config(data) {
    var type = data.type;
    var round = type === "doughnut" || type === "pie";
    var datasets = data.datasets.map(function (ds) {
      var out = { label: ds.label, data: ds.data, backgroundColor: ds.backgroundColor,
        borderColor: ds.borderColor, borderWidth: round ? 2 : (type === "line" ? 2 : 0) };
      if (type === "line") { out.cubicInterpolationMode = "monotone"; out.fill = false; out.pointRadius = 2; }
      return out;
    });
    var cfg = {
      type: type,
      data: { labels: data.labels, datasets: datasets },
      options: {
        responsive: true,
        maintainAspectRatio: false,
        animation: false,
        plugins: { legend: { display: round || datasets.length > 1, position: "bottom" } }
      }
    };
    if (!round) {
      cfg.options.scales = { y: { beginAtZero: true, ticks: { precision: 0 } } };
    }
    return cfg;
  }

  function show(el, selector, on) {
    var node = el.querySelector(selector);
    if (node) { node.hidden = !on; }
    return node;
  }

  function draw(el, data) {
    var status = el.querySelector("[data-chart-status]");
    if (status) { status.textContent = ""; status.hidden = true; }
    var note = el.querySelector("[data-chart-note]");
    if (note && data.note) { note.textContent = data.note; }
    if (data.empty) {
      show(el, "[data-chart-box]", false);
      var empty = show(el, "[data-chart-empty]", true);
      if (empty) { empty.textContent = data.empty_text || ""; }
      el.setAttribute("data-drawn", "empty");
      return;
    }
    var box = el.querySelector("[data-chart-box]");
    if (data.type === "heatmap") {
      box.textContent = "";
      box.className = "table-wrap heatmap-wrap";
      box.appendChild(heatmap(data));
      el.setAttribute("data-drawn", "table");
      return;
    }
    var canvas = el.querySelector("canvas");
    if (window.Chart && canvas) {
      var existing = window.Chart.getChart(canvas);
      if (existing) { existing.destroy(); }
      new window.Chart(canvas, config(data));
    } else {
      box.hidden = true;
    }
    var holder = el.querySelector("[data-chart-table]");
    if (holder) {
      holder.textContent = "";
      holder.appendChild(dataTable(data, data.unit));
      show(el, "[data-chart-details]", true);
      if (!window.Chart) { el.querySelector("[data-chart-details]").open = true; }
    }
    el.setAttribute("data-drawn", "chart");
  }

  function failed(el) {
    var status = el.querySelector("[data-chart-status]");
    if (status) { status.textContent = el.getAttribute("data-error") || "—"; status.hidden = false; }
    show(el, "[data-chart-box]", false);
    el.setAttribute("data-drawn", "error");
  }

  function load(el) {
    var src = el.getAttribute("data-src");
    if (!src) { return; }
    fetch(src, { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (r) { if (!r.ok) { throw new Error(String(r.status)); } return r.json(); })
      .then(function (data) { draw(el, data); })
      .catch(function () { failed(el); });
  }

  function periodForm() {
    // Typing a date chooses "custom dates"; choosing a fixed period clears nothing.
    var select = document.getElementById("f-period");
    if (!select) { return; }
    ["f-from", "f-to"].forEach(function (id) {
      var input = document.getElementById(id);
      if (input) {
        input.addEventListener("change", function () { select.value = "custom"; });
      }
    });
  }

  function start() {
    periodForm();
    var nodes = document.querySelectorAll("[data-chart]");
    for (var i = 0; i < nodes.length; i++) { load(nodes[i]); }
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
})();
