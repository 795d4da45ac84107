// Layout problems a person would see: a wrapped top bar, a table wider than its box,
// a clipped cell, a page that scrolls sideways. Evaluated by tests/browser/test_i18n_pages.py.
(() => {
  const problems = [];
  const oneLine = (box, what) => {
    if (!box) return;
    const shown = [...box.children].filter((c) => c.getClientRects().length);
    const mids = shown.map((c) => { const r = c.getBoundingClientRect(); return r.top + r.height / 2; });
    if (mids.length && Math.max(...mids) - Math.min(...mids) > 8) {
      problems.push(`${what} wraps: ${shown.map((c, i) => `${c.className || c.tagName}@${mids[i]}`)}`);
    }
  };
  oneLine(document.querySelector(".topbar"), "top bar");
  oneLine(document.querySelector(".topbar-end"), "top bar (right side)");
  oneLine(document.querySelector(".mainnav"), "navigation");
  oneLine(document.querySelector(".kiosk-bar"), "kiosk bar");
  const width = document.documentElement.clientWidth;
  if (document.documentElement.scrollWidth > width + 1) problems.push("the page scrolls sideways");
  for (const table of document.querySelectorAll("table.data")) {
    if (!table.offsetParent) continue;
    const wrap = table.closest(".table-wrap");
    if (wrap && wrap.scrollWidth > wrap.clientWidth + 1) {
      problems.push(`table ${table.id} is wider than its box (${wrap.scrollWidth} > ${wrap.clientWidth})`);
    }
    if (table.getBoundingClientRect().right > width + 1) problems.push(`table ${table.id} runs off the page`);
    for (const cell of table.querySelectorAll("th, td")) {
      if (cell.offsetParent && cell.scrollWidth > cell.clientWidth + 1) {
        problems.push(`clipped cell: ${cell.textContent.trim()}`);
      }
    }
  }
  return problems;
})
