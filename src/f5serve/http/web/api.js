// The public HTTP API of f5serve, with the API key from localStorage as a Bearer token.
// Paths are relative ("v1/..."), so the page also works behind a proxy under a prefix.

const KEY_NAME = "f5serve.apiKey";

export const FORMATS = ["wav", "flac", "mp3", "opus", "aac", "m4a", "pcm"];
export const EXTENSIONS = { opus: "ogg", pcm: "pcm" };

export const apiKey = {
  get: () => localStorage.getItem(KEY_NAME) || "",
  set: (value) => (value ? localStorage.setItem(KEY_NAME, value) : localStorage.removeItem(KEY_NAME)),
};

export class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

// fetch() with the key; throws ApiError with the server's {"error": {code, message}} on failure.
export async function request(path, { method = "GET", json, form } = {}) {
  const headers = {};
  const key = apiKey.get();
  if (key) headers.Authorization = `Bearer ${key}`;
  let body = form;
  if (json !== undefined) {
    headers["Content-Type"] = "application/json";
    body = JSON.stringify(json);
  }
  let response;
  try {
    response = await fetch(path, { method, headers, body });
  } catch (error) {
    throw new ApiError(0, "network", `the server cannot be reached (${error.message})`);
  }
  if (!response.ok) throw await toError(response);
  return response;
}

export async function getJson(path, options) {
  const response = await request(path, options);
  return response.status === 204 ? null : response.json();
}

// An object URL of a response body (audio elements cannot send the Authorization header).
export async function blobUrl(path, options) {
  const response = await request(path, options);
  return URL.createObjectURL(await response.blob());
}

async function toError(response) {
  let code = `http_${response.status}`;
  let message = response.statusText || `HTTP ${response.status}`;
  try {
    const body = await response.json();
    if (body && body.error) ({ code, message } = body.error);
  } catch {
    // not JSON: keep the status line
  }
  return new ApiError(response.status, code, message);
}

export function describe(error) {
  if (!(error instanceof ApiError)) return String(error);
  return error.status ? `${error.message} (${error.status} ${error.code})` : error.message;
}

export function fileName(stem, format) {
  return `${stem}.${EXTENSIONS[format] || format}`;
}
