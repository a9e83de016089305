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

// The JSON payloads of a server-sent event stream (a fetch() response), as they arrive.
export async function* serverEvents(response) {
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  for (let part = await reader.read(); !part.done; part = await reader.read()) {
    buffer += part.value;
    for (let end = buffer.indexOf("\n\n"); end >= 0; end = buffer.indexOf("\n\n")) {
      const lines = buffer.slice(0, end).split("\n");
      buffer = buffer.slice(end + 2);
      const data = lines.filter((line) => line.startsWith("data: ")).map((line) => line.slice(6));
      if (data.length) yield JSON.parse(data.join("\n"));
    }
  }
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
