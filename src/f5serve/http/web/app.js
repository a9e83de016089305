// Entry point: tabs, the API key field and the first load of voices and models.

import { apiKey, describe } from "./api.js";
import { refreshCatalog } from "./catalog.js";
import { $, $$, showError } from "./dom.js";
import { initJobs, showJobs } from "./jobs.js";
import { initModels, showModels } from "./models.js";
import { initSpeak } from "./speak.js";
import { initVoices } from "./voices.js";

const TABS = ["speak", "voices", "jobs", "models"];
const onShow = { jobs: showJobs, models: showModels };

function selectTab(name) {
  for (const tab of $$("[data-tab]")) tab.setAttribute("aria-selected", String(tab.dataset.tab === name));
  for (const panel of $$(".panel")) panel.hidden = panel.id !== `tab-${name}`;
  if (location.hash !== `#${name}`) history.replaceState(null, "", `#${name}`);
  onShow[name]?.();
}

async function load() {
  try {
    await refreshCatalog();
    showError($("#banner"), "");
  } catch (error) {
    const hint = error.status === 401 ? " Enter the API key above." : "";
    showError($("#banner"), `Could not load voices and models: ${describe(error)}.${hint}`);
  }
}

function init() {
  const key = $("#api-key");
  key.value = apiKey.get();
  key.addEventListener("change", () => {
    apiKey.set(key.value.trim());
    load();
  });
  for (const tab of $$("[data-tab]")) tab.addEventListener("click", () => selectTab(tab.dataset.tab));
  initSpeak();
  initVoices();
  initJobs();
  initModels();
  const fromHash = () => selectTab(TABS.includes(location.hash.slice(1)) ? location.hash.slice(1) : "speak");
  window.addEventListener("hashchange", fromHash);
  fromHash();
  load();
}

init();
