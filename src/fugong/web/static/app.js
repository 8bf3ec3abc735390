// Small progressive enhancements; every page works without this file.
"use strict";
document.addEventListener("DOMContentLoaded", () => {
  const toggle = document.querySelector(".navtoggle");
  const nav = document.getElementById("nav");
  if (toggle && nav) {
    toggle.addEventListener("click", () => {
      const open = nav.classList.toggle("open");
      toggle.setAttribute("aria-expanded", String(open));
    });
  }
  document.querySelectorAll("[data-back]").forEach((a) => {
    a.addEventListener("click", (ev) => {
      if (history.length > 1) { ev.preventDefault(); history.back(); }
    });
  });
  // Street choices follow the chosen district.
  const district = document.querySelector("[data-district]");
  const street = document.querySelector("[data-street]");
  if (district && street) {
    const sync = () => {
      street.querySelectorAll("option[data-district]").forEach((o) => {
        o.hidden = o.dataset.district !== district.value;
        if (o.hidden && o.selected) { street.value = ""; }
      });
    };
    district.addEventListener("change", sync);
    sync();
  }
  // Long uploads show progress while the server validates.
  document.querySelectorAll("form[data-progress]").forEach((f) => {
    f.addEventListener("submit", () => {
      const p = f.querySelector("progress");
      if (p) { p.hidden = false; }
      f.querySelectorAll("button[type=submit]").forEach((b) => { b.disabled = true; b.textContent = "正在校验…"; });
    });
  });
  // Upper-case the credit code as it is typed: it is case-insensitive on paper.
  document.querySelectorAll("input[data-uscc]").forEach((i) => {
    i.addEventListener("input", () => { i.value = i.value.toUpperCase(); });
  });
});
