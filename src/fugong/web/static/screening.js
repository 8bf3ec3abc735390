// Live fever alarms on a site's page: server-sent events add a row per new alarm without a
// reload. The page lists today's alarms without this file; this only keeps it current.
"use strict";
document.addEventListener("DOMContentLoaded", () => {
  const table = document.querySelector("table[data-events]");
  if (!table || !window.EventSource) { return; }
  const rows = document.getElementById("alarm-rows");
  const banner = document.getElementById("live-banner");
  const counter = document.getElementById("kpi-alarms");
  const pending = document.getElementById("kpi-open");
  const state = document.querySelector("[data-live-label]");
  const seen = new Set(Array.from(rows.querySelectorAll("tr[data-alarm]")).map((r) => r.dataset.alarm));
  const cell = (label, text, cls) => {
    const td = document.createElement("td");
    td.dataset.label = label;
    if (cls) { td.className = cls; }
    td.textContent = text;
    return td;
  };
  const bump = (el) => { if (el) { el.textContent = String((parseInt(el.textContent, 10) || 0) + 1); } };
  const source = new EventSource(table.dataset.events);
  source.addEventListener("open", () => { if (state) { state.textContent = "（实时）"; } });
  source.addEventListener("error", () => { if (state) { state.textContent = "（连接中断，正在重连…）"; } });
  source.addEventListener("alarm", (ev) => {
    const a = JSON.parse(ev.data);
    if (seen.has(String(a.id))) { return; }
    seen.add(String(a.id));
    const empty = rows.querySelector("tr.empty");
    if (empty) { empty.remove(); }
    const tr = document.createElement("tr");
    tr.className = "st-open fresh";
    tr.dataset.alarm = String(a.id);
    const first = document.createElement("td");
    first.dataset.label = "时间";
    const link = document.createElement("a");
    link.href = a.url;
    link.textContent = a.time;
    first.appendChild(link);
    tr.append(first, cell("设备", a.device), cell("温度", a.temperature + " °C", "temp"),
      cell("规则", a.rule), cell("状态", a.status));
    rows.prepend(tr);
    bump(counter);
    bump(pending);
    if (banner) { banner.hidden = false; }
  });
});
