// A tiny client of the f5serve HTTP API and of the RunPod-shaped worker API
// (`python -m f5serve.runpod`, behind RunPod or its local `--rp_serve_api`).
// Plain JavaScript (ES module) typed with JSDoc against `api.d.ts`, which openapi-typescript
// generates from the server's OpenAPI document (`npm run typecheck` checks this file with tsc).

/** @typedef {import("./api.js").components["schemas"]} Schemas */
/** @typedef {Schemas["TTSRequest"]} TTSRequest */
/** @typedef {Schemas["JobRequest"]} JobRequest */
/** @typedef {Schemas["JobStatus"]} JobStatus */
/** @typedef {Schemas["VoiceList"]} VoiceList */
/** @typedef {import("./api.js").paths["/v1/jobs/{job_id}/audio"]["get"]["parameters"]["query"]} AudioQuery */
/** @typedef {NonNullable<NonNullable<AudioQuery>["format"]>} AudioFormat */
/** @typedef {{ job_id: string, status: JobStatus["status"], links: Record<string, string> }} SubmittedJob */
/** @typedef {{ intervalMs?: number, timeoutMs?: number }} PollOptions */
/**
 * The seed orchestrator's request (`input` of `/run`): text and a clip of the voices directory.
 * @typedef {{ text: string, ref_name?: string, voice?: string, speed?: number, job_id?: string,
 *   [option: string]: unknown }} RunPodInput
 */
/**
 * A RunPod job as `/run` and `/status/{id}` answer it.
 * @typedef {{ id: string, status: "IN_QUEUE" | "IN_PROGRESS" | "COMPLETED" | "FAILED" |
 *   "CANCELLED" | "TIMED_OUT", output?: any, error?: string }} RunPodJob
 */

const JOB_DONE = new Set(["succeeded", "failed", "cancelled", "expired"]);
const RUNPOD_DONE = new Set(["COMPLETED", "FAILED", "CANCELLED", "TIMED_OUT"]);

/** An answer that is not 2xx; `code` and `details` come from the JSON error envelope. */
export class F5ServeError extends Error {
  /**
   * @param {number} status
   * @param {string} code
   * @param {string} message
   * @param {Record<string, unknown> | null} [details]
   */
  constructor(status, code, message, details = null) {
    super(`${status} ${code}: ${message}`);
    this.name = "F5ServeError";
    this.status = status;
    this.code = code;
    this.details = details;
  }
}

/**
 * @param {Response} response
 * @returns {Promise<never>}
 */
async function fail(response) {
  const text = await response.text();
  try {
    const { error } = JSON.parse(text);
    throw new F5ServeError(response.status, error.code, error.message, error.details);
  } catch (err) {
    if (err instanceof F5ServeError) throw err;
    throw new F5ServeError(response.status, "http_error", text || response.statusText);
  }
}

/**
 * Call `check` every `intervalMs` until it returns something other than undefined.
 * @template T
 * @param {() => Promise<T | undefined>} check
 * @param {PollOptions} options
 * @returns {Promise<T>}
 */
async function poll(check, { intervalMs = 250, timeoutMs = 120_000 }) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const done = await check();
    if (done !== undefined) return done;
    if (Date.now() > deadline) throw new Error(`not done after ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, intervalMs));
  }
}

class HttpClient {
  /** @param {{ baseUrl: string, apiKey?: string }} options */
  constructor({ baseUrl, apiKey }) {
    this.baseUrl = baseUrl.replace(/\/+$/, "");
    /** @type {Record<string, string>} */
    this.headers = apiKey ? { Authorization: `Bearer ${apiKey}` } : {};
  }

  /**
   * @param {string} method
   * @param {string} path
   * @param {unknown} [body]
   * @returns {Promise<Response>}
   */
  async send(method, path, body) {
    const init = body === undefined
      ? { method, headers: this.headers }
      : { method, headers: { ...this.headers, "Content-Type": "application/json" }, body: JSON.stringify(body) };
    const response = await fetch(`${this.baseUrl}${path}`, init);
    return response.ok ? response : fail(response);
  }

  /**
   * @param {string} method
   * @param {string} path
   * @param {unknown} [body]
   * @returns {Promise<any>}
   */
  async json(method, path, body) {
    return (await this.send(method, path, body)).json();
  }

  /**
   * @param {string} method
   * @param {string} path
   * @param {unknown} [body]
   * @returns {Promise<Uint8Array>}
   */
  async bytes(method, path, body) {
    return new Uint8Array(await (await this.send(method, path, body)).arrayBuffer());
  }
}

/** The f5serve HTTP API (`f5serve serve`). */
export class F5ServeClient extends HttpClient {
  /**
   * Synthesise speech and wait for it (`POST /v1/tts`): the audio file's bytes.
   * @param {TTSRequest} request
   * @returns {Promise<Uint8Array>}
   */
  speech(request) {
    return this.bytes("POST", "/v1/tts", request);
  }

  /** @returns {Promise<VoiceList["voices"]>} */
  async voices() {
    /** @type {VoiceList} */
    const list = await this.json("GET", "/v1/voices");
    return list.voices;
  }

  /**
   * @param {JobRequest} request
   * @returns {Promise<SubmittedJob>}
   */
  submitJob(request) {
    return this.json("POST", "/v1/jobs", request);
  }

  /**
   * @param {string} jobId
   * @returns {Promise<JobStatus>}
   */
  job(jobId) {
    return this.json("GET", `/v1/jobs/${encodeURIComponent(jobId)}`);
  }

  /**
   * Poll a job until it has finished (succeeded, failed, cancelled or expired).
   * @param {string} jobId
   * @param {PollOptions} [options]
   * @returns {Promise<JobStatus>}
   */
  waitForJob(jobId, options = {}) {
    return poll(async () => {
      const job = await this.job(jobId);
      return JOB_DONE.has(job.status) ? job : undefined;
    }, options);
  }

  /**
   * A finished job's audio, in any format.
   * @param {string} jobId
   * @param {AudioFormat} [format]
   * @returns {Promise<Uint8Array>}
   */
  jobAudio(jobId, format = "wav") {
    return this.bytes("GET", `/v1/jobs/${encodeURIComponent(jobId)}/audio?format=${format}`);
  }
}

/** The RunPod-shaped API of the worker (`python -m f5serve.runpod --rp_serve_api`). */
export class RunPodClient extends HttpClient {
  /**
   * @param {RunPodInput} input
   * @returns {Promise<RunPodJob>}
   */
  run(input) {
    return this.json("POST", "/run", { input });
  }

  /**
   * @param {string} id
   * @returns {Promise<RunPodJob>}
   */
  status(id) {
    // POST: the SDK's local API answers only POST here
    return this.json("POST", `/status/${encodeURIComponent(id)}`);
  }

  /**
   * `/run`, then `/status/{id}` until the job has finished (COMPLETED, FAILED, ...).
   * @param {RunPodInput} input
   * @param {PollOptions} [options]
   * @returns {Promise<RunPodJob>}
   */
  async runAndWait(input, options = {}) {
    const { id } = await this.run(input);
    return poll(async () => {
      const job = await this.status(id);
      return RUNPOD_DONE.has(job.status) ? job : undefined;
    }, options);
  }
}
