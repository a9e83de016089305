// Models: the catalogue, what is loaded, where and how much memory it takes.

import { describe, getJson } from "./api.js";
import { $, formatBytes, h } from "./dom.js";

export function initModels() {
  $("#model-refresh").addEventListener("click", showModels);
}

export async function showModels() {
  const body = $("#model-table tbody");
  try {
    const models = (await getJson("v1/models")).data;
    body.replaceChildren(...models.map(modelRow));
  } catch (error) {
    body.replaceChildren(h("tr", {}, h("td.error", { colspan: 7 }, describe(error))));
  }
}

function modelRow(model) {
  return h(
    "tr",
    { dataset: { model: model.id } },
    h("td", {}, h("strong", {}, model.id), model.default && h("span.badge", {}, "default")),
    h("td", {}, model.languages.join(", ")),
    h("td", {}, h(`span.badge.${model.loaded ? "succeeded" : "idle"}`, {}, model.loaded ? "loaded" : "not loaded")),
    h("td.mono", {}, model.device ?? "–"),
    h("td", {}, formatBytes(model.bytes)),
    h("td", {}, model.licence ?? "–"),
    h("td.muted", {}, model.description ?? ""),
  );
}
