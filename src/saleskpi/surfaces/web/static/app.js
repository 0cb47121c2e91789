// saleskpi dashboard: a little progressive enhancement; every page works without it.
"use strict";
document.addEventListener("DOMContentLoaded", () => {
  // A filter box suggests the values the data holds (a product by its name too), asked
  // of the API the first time the box is used, not with every page.
  for (const input of document.querySelectorAll("input[data-values]")) {
    const list = document.getElementById(input.getAttribute("list"));
    let asked = false;
    const ask = () => {
      if (asked || !list) return;
      asked = true;
      fetch(input.dataset.values, { credentials: "same-origin" })
        .then((response) => (response.ok ? response.json() : { values: [] }))
        .then((found) => {
          for (const item of found.values) {
            const option = document.createElement("option");
            option.value = item.value;
            if (item.label) option.label = item.label;
            list.append(option);
          }
        })
        .catch(() => { asked = false; });
    };
    input.addEventListener("focus", ask);
    input.addEventListener("input", ask);
  }
  // Ask before destructive forms (delete a target, a KPI).
  for (const form of document.querySelectorAll("form[data-confirm]")) {
    form.addEventListener("submit", (event) => {
      if (!window.confirm(form.dataset.confirm)) event.preventDefault();
    });
  }
  // A checkbox that ticks every checkbox of a form at once (the targets to delete).
  for (const all of document.querySelectorAll("input[data-select-all]")) {
    const label = all.closest("label");
    if (label) label.hidden = false;
    all.addEventListener("change", () => {
      const boxes = document.querySelectorAll(
        `input[type=checkbox][form="${all.dataset.selectAll}"]`);
      for (const box of boxes) box.checked = all.checked;
    });
  }
  // The targets grid: a block pasted from a spreadsheet (rows of tab-separated cells)
  // fills the cells from the one pasted into, rightwards and down; saving is the form's.
  for (const table of document.querySelectorAll("table.grid-editor")) {
    const rows = [...table.tBodies[0].rows].map((r) => [...r.querySelectorAll("input[type=text]")]);
    const status = table.closest("form").querySelector("[data-paste-status]");
    table.addEventListener("input", (event) => event.target.classList.add("changed"));
    table.addEventListener("paste", (event) => {
      const input = event.target;
      const text = (event.clipboardData && event.clipboardData.getData("text/plain")) || "";
      const block = text.replace(/\r/g, "").replace(/\n+$/, "");
      if (!input.matches("input[type=text]") || !/[\t\n]/.test(block)) return;
      event.preventDefault();
      const top = rows.findIndex((r) => r.includes(input));
      const left = rows[top].indexOf(input);
      let leftOut = 0;
      block.split("\n").forEach((line, down) => line.split("\t").forEach((value, right) => {
        const cell = rows[top + down] && rows[top + down][left + right];
        if (!cell) { leftOut += value.trim() ? 1 : 0; return; }
        cell.value = value.trim();
        cell.classList.add("changed");
      }));
      if (status) {
        status.textContent = leftOut ? status.dataset.leftOut.replace("{count}", leftOut) : "";
      }
    });
  }
  // The KPI form: grey the fields the chosen kind (count, sum, rate) does not use.
  for (const kind of document.querySelectorAll("select[data-kind]")) {
    const parts = kind.form.querySelectorAll("fieldset[data-for]");
    const show = () => {
      for (const part of parts) {
        part.classList.toggle("dimmed", !part.dataset.for.split(" ").includes(kind.value));
      }
    };
    kind.addEventListener("change", show);
  }
  // Selects marked .autosubmit apply as soon as they change.
  for (const select of document.querySelectorAll("select.autosubmit")) {
    select.addEventListener("change", () => select.form && select.form.submit());
  }
});
