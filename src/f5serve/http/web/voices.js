// Voices: upload or record a clip with its transcript, listen, edit the transcript, delete.

import { blobUrl, describe, getJson } from "./api.js";
import { catalog, onCatalog, refreshVoices } from "./catalog.js";
import { $, formValues, h, showError } from "./dom.js";

let recorded = null; // the last recording, a Blob
let recorder = null;
const confirming = new Set(); // ids of the voices whose Delete was clicked once
let clipUrls = []; // object URLs of the listed voices' clips, released at the next render

export function initVoices() {
  const form = $("#voice-form");
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    addVoice(form);
  });
  form.audio.addEventListener("change", () => {
    recorded = null;
    const file = form.audio.files[0];
    if (file) showClip(URL.createObjectURL(file));
  });
  $("#record").addEventListener("click", toggleRecording);
  onCatalog(() => renderVoices());
}

async function addVoice(form) {
  const clip = recorded || form.audio.files[0];
  showError($("#voice-error"), "");
  if (!clip) {
    showError($("#voice-error"), "Choose a clip to upload or record one.");
    return;
  }
  const values = formValues(form);
  const data = new FormData();
  for (const name of ["name", "ref_text", "language"]) if (values[name]) data.append(name, values[name]);
  data.append("audio", clip, clip.name || "recording.webm");
  $("#voice-status").textContent = "Uploading…";
  try {
    const voice = await getJson("v1/voices", { method: "POST", form: data });
    $("#voice-status").textContent = `Added “${voice.name}” (${voice.duration.toFixed(1)} s after clean-up).${warned(voice)}`;
    form.reset();
    recorded = null;
    $("#clip-preview").hidden = true;
    await refreshVoices();
  } catch (error) {
    $("#voice-status").textContent = "";
    showError($("#voice-error"), `The clip was refused: ${describe(error)}`);
  }
}

async function toggleRecording() {
  const button = $("#record");
  if (recorder) {
    recorder.stop();
    return;
  }
  try {
    const stream = await navigator.mediaDevices.getUserMedia({ audio: true });
    const parts = [];
    const started = performance.now();
    recorder = new MediaRecorder(stream);
    const timer = setInterval(() => ($("#record-time").textContent = `${((performance.now() - started) / 1000).toFixed(1)} s`), 100);
    recorder.addEventListener("dataavailable", (event) => parts.push(event.data));
    recorder.addEventListener("stop", () => {
      clearInterval(timer);
      stream.getTracks().forEach((track) => track.stop());
      recorded = new Blob(parts, { type: recorder.mimeType });
      recorder = null;
      button.textContent = "● Record again";
      button.classList.remove("recording");
      $("#voice-form").audio.value = "";
      showClip(URL.createObjectURL(recorded));
    });
    recorder.start();
    button.textContent = "■ Stop";
    button.classList.add("recording");
  } catch (error) {
    showError($("#voice-error"), `Recording is not available: ${error.message}`);
  }
}

function showClip(url) {
  const preview = $("#clip-preview");
  preview.src = url;
  preview.hidden = false;
}

function renderVoices() {
  clipUrls.forEach((url) => URL.revokeObjectURL(url));
  clipUrls = [];
  const list = $("#voice-list");
  if (!catalog.voices.length) {
    list.replaceChildren(h("p.muted", {}, "No voices yet: add one above."));
    return;
  }
  list.replaceChildren(...catalog.voices.map(voiceCard));
}

function voiceCard(voice) {
  const transcript = h("textarea", { rows: 2, "aria-label": `Transcript of ${voice.name}` });
  transcript.value = voice.ref_text;
  const message = h("span.muted", { "aria-live": "polite" });
  const player = h("audio", { controls: true, preload: "none" });
  blobUrl(`v1/voices/${voice.id}/audio`).then(
    (url) => clipUrls.push((player.src = url)),
    (error) => (message.textContent = describe(error)),
  );
  const asked = confirming.has(voice.id); // a list refreshed meanwhile keeps the question
  const remove = h("button.ghost.danger", { type: "button" }, asked ? "Really delete?" : "Delete");
  if (asked) remove.dataset.confirm = "yes";
  remove.addEventListener("click", () => deleteVoice(voice, remove, message));
  return h(
    "article.card.voice",
    { dataset: { voice: voice.name } },
    h("header.row", {}, h("h3", {}, voice.name), h("span.badge", {}, voice.source), voice.language && h("span.badge", {}, voice.language), h("span.muted", {}, `${voice.duration.toFixed(1)} s`)),
    player,
    transcript,
    h("div.row", {}, h("button.ghost", { type: "button", onclick: () => saveTranscript(voice, transcript.value, message) }, "Save transcript"), remove, message),
  );
}

async function saveTranscript(voice, text, message) {
  try {
    const saved = await getJson(`v1/voices/${voice.id}`, { method: "PATCH", json: { ref_text: text } });
    message.textContent = `Saved.${warned(saved)}`;
    await refreshVoices();
  } catch (error) {
    message.textContent = describe(error);
  }
}

// The server's warnings about a voice (a transcript that disagrees with its clip), as a sentence.
function warned(voice) {
  return voice.warnings && voice.warnings.length ? ` Warning: ${voice.warnings.join(" ")}` : "";
}

async function deleteVoice(voice, button, message) {
  if (button.dataset.confirm !== "yes") {
    confirming.add(voice.id);
    button.dataset.confirm = "yes";
    button.textContent = "Really delete?";
    return;
  }
  try {
    await getJson(`v1/voices/${voice.id}`, { method: "DELETE" });
    confirming.delete(voice.id);
    await refreshVoices();
  } catch (error) {
    message.textContent = describe(error);
  }
}
