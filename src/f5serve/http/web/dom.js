// Small DOM helpers shared by the tabs.

export const $ = (selector, root = document) => root.querySelector(selector);
export const $$ = (selector, root = document) => [...root.querySelectorAll(selector)];

// h("button.ghost", {onclick}, "text", child...) -> element
export function h(tag, props = {}, ...children) {
  const [name, ...classes] = tag.split(".");
  const element = document.createElement(name);
  if (classes.length) element.className = classes.join(" ");
  for (const [key, value] of Object.entries(props)) {
    if (key.startsWith("on")) element.addEventListener(key.slice(2), value);
    else if (key === "dataset") Object.assign(element.dataset, value);
    else if (value !== undefined && value !== null && value !== false) element.setAttribute(key, value === true ? "" : value);
  }
  element.append(...children.flat().filter((c) => c !== null && c !== undefined && c !== false));
  return element;
}

export function showError(box, message) {
  box.textContent = message;
  box.hidden = !message;
}

export function download(url, name) {
  const link = h("a", { href: url, download: name });
  document.body.append(link);
  link.click();
  link.remove();
}

// Form fields as an object without the empty ones; numbers where the input is a number.
export function formValues(form) {
  const values = {};
  for (const field of form.elements) {
    if (!field.name || field.type === "file" || field.type === "submit") continue;
    if (field.type === "checkbox") values[field.name] = field.checked;
    else if (field.value === "") continue;
    else values[field.name] = field.type === "number" || field.type === "range" ? Number(field.value) : field.value;
  }
  return values;
}

export function formatBytes(bytes) {
  if (bytes === null || bytes === undefined) return "–";
  const units = ["B", "kB", "MB", "GB"];
  let value = bytes;
  let unit = 0;
  while (value >= 1000 && unit < units.length - 1) {
    value /= 1000;
    unit += 1;
  }
  return `${value.toFixed(unit ? 1 : 0)} ${units[unit]}`;
}

export function formatTime(iso) {
  return iso ? new Date(iso).toLocaleString() : "–";
}
