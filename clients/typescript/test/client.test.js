// Runs against real servers: F5SERVE_URL (`f5serve serve` on the tiny model, voice "narrator")
// and F5SERVE_RUNPOD_URL (`python -m f5serve.runpod --rp_serve_api`), both started by
// tests/integration/test_typescript_client.py.
import assert from "node:assert/strict";
import { test } from "node:test";

import { F5ServeClient, F5ServeError, RunPodClient } from "../src/client.js";

const server = new F5ServeClient({ baseUrl: required("F5SERVE_URL") });
const runpod = new RunPodClient({ baseUrl: required("F5SERVE_RUNPOD_URL") });
const TEXT = "The narrator reads the first chapter aloud.";

/** @param {string} name */
function required(name) {
  const value = process.env[name];
  assert.ok(value, `${name} is not set`);
  return value;
}

/** @param {Uint8Array} bytes */
function assertWav(bytes) {
  const text = new TextDecoder().decode(bytes.subarray(0, 12));
  assert.equal(text.slice(0, 4), "RIFF");
  assert.equal(text.slice(8, 12), "WAVE");
  assert.ok(bytes.length > 44 + 24000 * 2 * 0.5, `only ${bytes.length} bytes`);
}

test("voices lists the voices directory's narrator", async () => {
  const voices = await server.voices();
  assert.deepEqual(voices.map((v) => v.name), ["narrator"]);
  assert.equal(voices[0].source, "directory");
});

test("speech returns a WAV file", async () => {
  assertWav(await server.speech({ text: TEXT, voice: "narrator", response_format: "wav" }));
});

test("an unknown voice is a typed error with the envelope's code", async () => {
  await assert.rejects(server.speech({ text: TEXT, voice: "nobody" }), (err) => {
    assert.ok(err instanceof F5ServeError);
    assert.equal(err.status, 404);
    assert.equal(err.code, "not_found");
    return true;
  });
});

test("a job is submitted, polled until it succeeds and downloaded", async () => {
  const submitted = await server.submitJob({ text: TEXT, voice: "narrator", job_id: "ts-job-1" });
  assert.equal(submitted.job_id, "ts-job-1");
  const job = await server.waitForJob(submitted.job_id);
  assert.equal(job.status, "succeeded", JSON.stringify(job.error));
  assert.equal(job.progress.fraction, 1);
  assertWav(await server.jobAudio(job.job_id));
});

test("the seed orchestrator's /run then /status flow completes with base64 audio", async () => {
  const input = { text: TEXT, ref_name: "sample/narrator.wav", speed: 0.9, job_id: "ts-seed-1" };
  const job = await runpod.runAndWait(input);
  assert.equal(job.status, "COMPLETED", JSON.stringify(job));
  assert.equal(job.output.status, "completed");
  assert.equal(job.output.job_id, "ts-seed-1");
  assert.equal(job.output.text, TEXT);
  assertWav(Uint8Array.from(Buffer.from(job.output.audio_base64, "base64")));
});
