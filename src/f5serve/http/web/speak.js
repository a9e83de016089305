// Speak: synthesise a text and play it. Streaming uses POST v1/audio/speech with raw PCM, which
// the server sends chunk by chunk; otherwise POST v1/tts (every option) returns the whole file.

import { blobUrl, describe, FORMATS, fileName, getJson, request } from "./api.js";
import { PcmPlayer } from "./audio.js";
import { $, download, formValues, h } from "./dom.js";

const OPTIONS = ["voice", "model", "language", "speed", "nfe_steps", "seed"];
let player = null; // the streamed take playing now

export function initSpeak() {
  const form = $("#speak-form");
  form.speed.addEventListener("input", () => (form["speed-out"].value = Number(form.speed.value).toFixed(2)));
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    speak(form);
  });
  $("#voice-preview").addEventListener("click", () => previewVoice(form.voice.value));
}

async function previewVoice(name) {
  if (!name) return;
  try {
    const audio = $("#speak-audio");
    audio.src = await blobUrl(`v1/voices/${encodeURIComponent(name)}/audio`);
    $("#speak-result").hidden = false;
    await audio.play();
  } catch (error) {
    status(`Preview failed: ${describe(error)}`, true);
  }
}

async function speak(form) {
  const values = formValues(form);
  const button = form.querySelector("button[type=submit]");
  button.disabled = true;
  try {
    if (values.stream) await speakStreaming(values);
    else await speakWhole(values);
  } catch (error) {
    status(`Failed: ${describe(error)}`, true);
  } finally {
    button.disabled = false;
  }
}

async function speakStreaming(values) {
  const started = performance.now();
  status("Synthesising…");
  const body = { input: values.text, voice: values.voice, model: values.model || "tts-1", speed: values.speed, response_format: "pcm" };
  const response = await request("v1/audio/speech", { method: "POST", json: body });
  player?.stop();
  player = new PcmPlayer();
  const reader = response.body.getReader();
  let firstAudio = null;
  for (let part = await reader.read(); !part.done; part = await reader.read()) {
    player.push(part.value);
    firstAudio ??= (performance.now() - started) / 1000;
    status(`Playing: first audio after ${firstAudio.toFixed(1)} s, ${player.seconds.toFixed(1)} s received…`);
  }
  if (firstAudio === null) throw new Error("the server sent no audio");
  const total = (performance.now() - started) / 1000;
  status(`Done: ${player.seconds.toFixed(1)} s of audio in ${total.toFixed(1)} s (first audio after ${firstAudio.toFixed(1)} s).`);
  const url = URL.createObjectURL(player.wav());
  showResult(url, { streamed: "yes", duration: `${player.seconds.toFixed(2)} s`, "first audio": `${firstAudio.toFixed(2)} s` }, [
    downloadButton("wav", () => download(url, fileName("speech", "wav"))),
  ]);
}

async function speakWhole(values) {
  player?.stop();
  player = null;
  status("Synthesising…");
  const body = { text: values.text, ...pick(values, OPTIONS), response_format: "json", audio_format: "wav" };
  const result = await getJson("v1/tts", { method: "POST", json: body });
  const url = `data:${result.content_type};base64,${result.audio_base64}`;
  status(`Done in ${result.processing_time_seconds.toFixed(1)} s.`);
  // The other formats are rendered again with the seed of this take, so they hold the same audio.
  const again = { ...body, seed: result.seed };
  delete again.audio_format;
  const buttons = FORMATS.map((format) =>
    downloadButton(format, () => (format === "wav" ? download(url, fileName("speech", "wav")) : downloadAgain(again, format))),
  );
  showResult(url, {
    model: result.model,
    language: result.language ?? "–",
    voice: result.voice ?? "–",
    seed: result.seed,
    duration: `${result.duration.toFixed(2)} s`,
    "processing time": `${result.processing_time_seconds.toFixed(2)} s`,
  }, buttons);
  $("#speak-audio").play().catch(() => {}); // a browser may refuse to autoplay: the controls remain
}

async function downloadAgain(body, format) {
  status(`Preparing ${format}…`);
  try {
    download(await blobUrl("v1/tts", { method: "POST", json: { ...body, response_format: format } }), fileName("speech", format));
    status(`Downloaded ${format}.`);
  } catch (error) {
    status(`Download failed: ${describe(error)}`, true);
  }
}

function showResult(url, facts, buttons) {
  const audio = $("#speak-audio");
  audio.src = url;
  $("#speak-facts").replaceChildren(...Object.entries(facts).flatMap(([k, v]) => [h("dt", {}, k), h("dd", {}, String(v))]));
  $("#speak-downloads").replaceChildren(...buttons);
  $("#speak-result").hidden = false;
}

function downloadButton(format, onclick) {
  return h("button.ghost.small", { type: "button", dataset: { format }, onclick }, format);
}

function pick(values, names) {
  return Object.fromEntries(names.filter((n) => values[n] !== undefined).map((n) => [n, values[n]]));
}

function status(message, error = false) {
  const line = $("#speak-status");
  line.textContent = message;
  line.classList.toggle("error", error);
}
