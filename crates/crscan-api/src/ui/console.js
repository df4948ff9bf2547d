// The console's script. Every page works without it; it adds:
// - the token kept in sessionStorage and sent as a Bearer on the script's requests;
// - the Scan button: starts a scan, polls its operation, shows the new result;
// - sorting tables by a header click, filtering rows as one types;
// - copy buttons, and a confirmation before deleting.
"use strict";

const TOKEN_KEY = "crscan.token";

function authHeaders(extra) {
  const headers = Object.assign({ Accept: "application/json" }, extra || {});
  const token = sessionStorage.getItem(TOKEN_KEY);
  if (token) headers.Authorization = "Bearer " + token;
  return headers;
}

function setupAuth() {
  const login = document.querySelector("form[data-login]");
  if (login) {
    login.addEventListener("submit", () => {
      const field = login.querySelector("input[name=token]");
      if (field && field.value) sessionStorage.setItem(TOKEN_KEY, field.value.trim());
    });
  }
  const logout = document.querySelector("form[data-logout]");
  if (logout) logout.addEventListener("submit", () => sessionStorage.removeItem(TOKEN_KEY));
}

function sleep(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

// Replaces the scan history section with the server's current one.
async function refreshHistory() {
  const response = await fetch(location.pathname, { headers: authHeaders({ Accept: "text/html" }) });
  if (!response.ok) return;
  const page = new DOMParser().parseFromString(await response.text(), "text/html");
  const fresh = page.getElementById("history");
  const current = document.getElementById("history");
  if (fresh && current) current.replaceWith(fresh);
}

function setupScan() {
  const form = document.querySelector("form[data-scan]");
  if (!form) return;
  const status = form.querySelector("[data-scan-status]");
  const button = form.querySelector("button");
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    button.disabled = true;
    status.textContent = "Starting scan…";
    try {
      const started = await fetch(form.action, { method: "POST", headers: authHeaders() });
      const body = await started.json();
      if (!started.ok) throw new Error(body.message || started.statusText);
      status.textContent = "Scan running…";
      await refreshHistory();
      for (;;) {
        await sleep(1000);
        const polled = await fetch("/ui/operations/" + encodeURIComponent(body.operationId), { headers: authHeaders() });
        const operation = await polled.json();
        if (!polled.ok) throw new Error(operation.message || polled.statusText);
        if (operation.done) {
          status.textContent = operation.error ? "Scan failed: " + operation.error.message : "Scan finished.";
          break;
        }
      }
      await refreshHistory();
    } catch (error) {
      status.textContent = "Scan failed: " + error.message;
    } finally {
      button.disabled = false;
    }
  });
}

function cellValue(row, index) {
  const cell = row.cells[index];
  if (!cell) return "";
  return cell.dataset.value !== undefined ? cell.dataset.value : cell.textContent.trim();
}

function setupSorting() {
  for (const table of document.querySelectorAll("table.sortable")) {
    const headers = table.tHead ? Array.from(table.tHead.rows[0].cells) : [];
    headers.forEach((header, index) => {
      const link = header.querySelector("a");
      const target = link || header;
      if (!link) {
        header.tabIndex = 0;
        header.setAttribute("role", "columnheader button");
      }
      const sort = (event) => {
        event.preventDefault();
        const ascending = header.getAttribute("aria-sort") !== "ascending";
        headers.forEach((other) => other.removeAttribute("aria-sort"));
        header.setAttribute("aria-sort", ascending ? "ascending" : "descending");
        const body = table.tBodies[0];
        const rows = Array.from(body.rows);
        const numeric = rows.every((row) => cellValue(row, index) === "" || !isNaN(Number(cellValue(row, index))));
        rows.sort((a, b) => {
          const x = cellValue(a, index);
          const y = cellValue(b, index);
          const order = numeric ? Number(x) - Number(y) : x.localeCompare(y, undefined, { numeric: true });
          return ascending ? order : -order;
        });
        for (const row of rows) body.appendChild(row);
      };
      target.addEventListener("click", sort);
      if (!link) header.addEventListener("keydown", (event) => {
        if (event.key === "Enter" || event.key === " ") sort(event);
      });
    });
  }
}

function setupFilters() {
  for (const input of document.querySelectorAll("input[data-filter]")) {
    const table = document.getElementById(input.dataset.filter);
    if (!table) continue;
    const count = document.querySelector('output[data-count="' + input.dataset.filter + '"]');
    const apply = () => {
      const needle = input.value.trim().toLowerCase();
      let shown = 0;
      const rows = table.tBodies[0].rows;
      for (const row of rows) {
        const match = !needle || row.textContent.toLowerCase().includes(needle);
        row.hidden = !match;
        if (match) shown += 1;
      }
      if (count) count.textContent = shown + " of " + count.textContent.split(" of ")[1];
    };
    input.addEventListener("input", apply);
  }
}

function setupCopy() {
  for (const button of document.querySelectorAll("button[data-copy]")) {
    if (!navigator.clipboard) continue;
    button.hidden = false;
    button.addEventListener("click", async () => {
      try {
        await navigator.clipboard.writeText(button.dataset.copy);
        button.textContent = "Copied";
      } catch (error) {
        button.textContent = "Copy failed";
      }
      setTimeout(() => { button.textContent = "Copy"; }, 2000);
    });
  }
}

function setupConfirm() {
  for (const form of document.querySelectorAll("form[data-confirm]")) {
    form.addEventListener("submit", (event) => {
      if (!confirm(form.dataset.confirm)) event.preventDefault();
    });
  }
}

document.addEventListener("DOMContentLoaded", () => {
  setupAuth();
  setupScan();
  setupSorting();
  setupFilters();
  setupCopy();
  setupConfirm();
});
