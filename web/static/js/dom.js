// The page-building helpers every page shares: find by id, build HTML and SVG
// elements without innerHTML (the pages' CSP and user-typed names both ask for it).

const SVG_NS = "http://www.w3.org/2000/svg";

/** The element with this id (pages address their parts by id). */
export const $ = (id) => document.getElementById(id);

/** Build an element: el("td", {className: "x", textContent: "y"}, child...). Never innerHTML. */
export function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(props)) {
    if (key === "dataset") Object.assign(node.dataset, value);
    else if (key.startsWith("aria-") || key === "role" || key === "for") node.setAttribute(key, value);
    else node[key] = value;
  }
  for (const child of children) {
    if (child !== null && child !== undefined) node.append(child);
  }
  return node;
}

/** Build an SVG element: attributes are set as attributes (SVG has no matching properties). */
export function svg(tag, attrs = {}, text) {
  const node = document.createElementNS(SVG_NS, tag);
  for (const [key, value] of Object.entries(attrs)) node.setAttribute(key, String(value));
  if (text !== undefined) node.textContent = text;
  return node;
}
