// Jobs: submit a long text, watch progress (polled), cancel, download; list with a status filter.

import { blobUrl, describe, fileName, getJson } from "./api.js";
import { $, download, formatTime, formValues, h } from "./dom.js";

const POLL_MS = 1000;
const ACTIVE = new Set(["queued", "running"]);
let timer = null;

export function initJobs() {
  const form = $("#job-form");
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    submitJob(form);
  });
  $("#job-filter").addEventListener("change", showJobs);
  $("#job-refresh").addEventListener("click", showJobs);
}

async function submitJob(form) {
  const { text, voice, model, nfe_steps, seed } = formValues(form);
  try {
    const job = await getJson("v1/jobs", { method: "POST", json: { text, voice, model, nfe_steps, seed } });
    $("#job-status").textContent = `Job ${job.job_id} is ${job.status}.`;
    await showJobs();
  } catch (error) {
    $("#job-status").textContent = `Refused: ${describe(error)}`;
  }
}

// Load the list now, and again every second while a job on it is queued or running.
export async function showJobs() {
  clearTimeout(timer);
  const status = $("#job-filter").value;
  try {
    const page = await getJson(`v1/jobs?limit=50${status ? `&status=${status}` : ""}`);
    $("#job-table tbody").replaceChildren(...page.jobs.map(jobRow));
    $("#job-empty").hidden = page.jobs.length > 0;
    const visible = !$("#tab-jobs").hidden;
    if (visible && page.jobs.some((job) => ACTIVE.has(job.status))) timer = setTimeout(showJobs, POLL_MS);
  } catch (error) {
    $("#job-status").textContent = `Could not list jobs: ${describe(error)}`;
  }
}

function jobRow(job) {
  const percent = Math.round(job.progress.fraction * 100);
  const detail = job.error ? job.error.message : job.progress.chunks ? `chunk ${job.progress.chunk + 1}/${job.progress.chunks}` : "";
  return h(
    "tr",
    { dataset: { job: job.job_id, status: job.status } },
    h("td.mono", {}, job.job_id),
    h("td", {}, h(`span.badge.${job.status}`, {}, job.status)),
    h(
      "td.grow",
      {},
      h("div.progress", { role: "progressbar", "aria-valuemin": 0, "aria-valuemax": 100, "aria-valuenow": percent }, h("div", { style: `width: ${percent}%` })),
      h("small.muted", {}, `${percent}% ${detail}`),
    ),
    h("td", {}, formatTime(job.created_at)),
    h("td.actions", {}, ...jobActions(job)),
  );
}

function jobActions(job) {
  if (ACTIVE.has(job.status)) return [h("button.ghost.small", { type: "button", onclick: () => cancelJob(job) }, "Cancel")];
  if (job.status === "succeeded") return [h("button.ghost.small", { type: "button", onclick: () => downloadJob(job) }, "Download")];
  return [];
}

async function cancelJob(job) {
  try {
    await getJson(`v1/jobs/${encodeURIComponent(job.job_id)}`, { method: "DELETE" });
  } catch (error) {
    $("#job-status").textContent = describe(error);
  }
  await showJobs();
}

async function downloadJob(job) {
  const format = $("#job-format").value || "wav";
  try {
    download(await blobUrl(`v1/jobs/${encodeURIComponent(job.job_id)}/audio?format=${format}`), fileName(job.job_id, format));
  } catch (error) {
    $("#job-status").textContent = describe(error);
  }
}
