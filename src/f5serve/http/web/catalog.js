// Voices and models known to the server, shown in every picker of the page.

import { FORMATS, getJson } from "./api.js";
import { $$, h } from "./dom.js";

export const catalog = { voices: [], models: [], listeners: [] };

export function onCatalog(listener) {
  catalog.listeners.push(listener);
}

export async function refreshCatalog() {
  const [voices, models] = await Promise.all([getJson("v1/voices"), getJson("v1/models")]);
  catalog.voices = voices.voices;
  catalog.models = models.data;
  changed();
}

export async function refreshVoices() {
  catalog.voices = (await getJson("v1/voices")).voices;
  changed();
}

function changed() {
  fillPickers();
  catalog.listeners.forEach((listener) => listener(catalog));
}

function fillPickers() {
  for (const select of $$("select[data-voices]")) {
    refill(select, catalog.voices.map((v) => [v.id, voiceLabel(v)]));
  }
  for (const select of $$("select[data-models]")) {
    refill(select, [["", "auto (by language)"], ...catalog.models.map((m) => [m.id, m.default ? `${m.id} (default)` : m.id])]);
  }
  const languages = [...new Set(catalog.models.flatMap((m) => m.languages))].sort();
  for (const select of $$("select[data-languages]")) {
    refill(select, [["auto", "auto-detect"], ...languages.map((l) => [l, l])]);
  }
  for (const select of $$("select[data-formats]")) {
    if (!select.options.length) refill(select, FORMATS.map((f) => [f, f]));
  }
}

// Picked by id: two voices may share a name (a key's own and a shared one, or, for an admin
// key, the voices of several keys), so the label tells them apart.
function voiceLabel(voice) {
  const language = voice.language ? ` (${voice.language})` : "";
  const whose = voice.source === "directory" ? " · shared" : voice.owner ? ` · ${voice.owner}` : "";
  return `${voice.name}${language}${whose}`;
}

function refill(select, options) {
  const chosen = select.value;
  select.replaceChildren(...options.map(([value, label]) => h("option", { value }, label)));
  if (options.some(([value]) => value === chosen)) select.value = chosen;
}
