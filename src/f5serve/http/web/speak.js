// Speak: synthesise a text and play it, with every option. Streaming asks POST v1/tts for
// server-sent events with raw PCM: each chunk's text and times, then its audio, as the chunk is
// made; without streaming the same endpoint returns the whole file.

import { ApiError, blobUrl, describe, FORMATS, fileName, getJson, request, serverEvents } from "./api.js";
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
  // The page picks the seed when none is given, so every download format holds this take.
  const body = { text: values.text, ...pick(values, OPTIONS), seed: values.seed ?? randomSeed() };
  const response = await request("v1/tts", { method: "POST", json: { ...body, response_format: "pcm", stream_format: "sse" } });
  player?.stop();
  player = new PcmPlayer();
  const segments = $("#speak-segments");
  segments.replaceChildren();
  segments.hidden = false;
  let firstAudio = null;
  for await (const event of serverEvents(response)) {
    if (event.type === "error") throw new ApiError(response.status, event.error.code, event.error.message);
    if (event.type === "speech.segment") segments.append(segmentRow(event));
    if (event.type !== "speech.audio.delta") continue;
    player.push(Uint8Array.from(atob(event.audio), (c) => c.charCodeAt(0)));
    firstAudio ??= (performance.now() - started) / 1000;
    status(`Playing: first audio after ${firstAudio.toFixed(1)} s, ${player.seconds.toFixed(1)} s received…`);
  }
  if (firstAudio === null) throw new Error("the server sent no audio");
  const total = (performance.now() - started) / 1000;
  status(`Done: ${player.seconds.toFixed(1)} s of audio in ${total.toFixed(1)} s (first audio after ${firstAudio.toFixed(1)} s).`);
  const url = URL.createObjectURL(player.wav());
  const facts = { streamed: "yes", seed: body.seed, duration: `${player.seconds.toFixed(2)} s`, "first audio": `${firstAudio.toFixed(2)} s` };
  showResult(url, facts, downloadButtons(url, body));
}

function segmentRow(segment) {
  const times = `${segment.start.toFixed(2)}–${segment.end.toFixed(2)} s`;
  return h("li", { dataset: { index: segment.index } }, h("span.muted", {}, times), " ", segment.text);
}

function randomSeed() {
  return Math.floor(Math.random() * 2 ** 31);
}

async function speakWhole(values) {
  player?.stop();
  player = null;
  $("#speak-segments").hidden = true;
  status("Synthesising…");
  const body = { text: values.text, ...pick(values, OPTIONS), response_format: "json", audio_format: "wav" };
  const result = await getJson("v1/tts", { method: "POST", json: body });
  const url = `data:${result.content_type};base64,${result.audio_base64}`;
  status(`Done in ${result.processing_time_seconds.toFixed(1)} s.`);
  const again = { ...body, seed: result.seed };
  delete again.audio_format;
  const buttons = downloadButtons(url, again);
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

// WAV is the take itself; the other formats are rendered again with the take's seed, so they
// hold the same audio.
function downloadButtons(wavUrl, body) {
  return FORMATS.map((format) =>
    downloadButton(format, () => (format === "wav" ? download(wavUrl, fileName("speech", "wav")) : downloadAgain(body, format))),
  );
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
