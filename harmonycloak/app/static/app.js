// The harmonycloak page: uploads files one at a time to /api/jobs, polls /api/jobs every second
// and draws the queue. No library, nothing from the internet.
"use strict";

const POLL_MS = 1000;
const $ = (selector, root = document) => root.querySelector(selector);
let options = null;
const rows = new Map(); // job id → its <li>
const uploads = []; // files waiting to be uploaded, in order
let uploading = false;

function say(text, kind = "info") {
  const item = document.createElement("li");
  item.className = kind;
  item.textContent = text;
  $("#messages").prepend(item);
  while ($("#messages").children.length > 8) $("#messages").lastChild.remove();
}

function duration(seconds) {
  if (seconds === null || seconds === undefined) return "";
  seconds = Math.max(0, Math.round(seconds));
  if (seconds < 60) return `${seconds} s`;
  const minutes = Math.floor(seconds / 60);
  if (minutes < 60) return `${minutes} min ${seconds % 60} s`;
  return `${Math.floor(minutes / 60)} h ${minutes % 60} min`;
}

function fillSelect(select, choices, chosen) {
  for (const choice of choices) {
    const option = document.createElement("option");
    option.value = choice;
    option.textContent = choice || "default";  // "": the server picks by the file's kind
    option.selected = choice === chosen;
    select.append(option);
  }
}

async function start() {
  options = await (await fetch("/api/options")).json();
  fillSelect($("#strength"), options.strengths, options.defaults.strength);
  fillSelect($("#cloak"), options.cloaks, options.defaults.cloak);
  fillSelect($("#mode"), options.modes, options.defaults.mode);
  $("#rounds").value = options.defaults.rounds;
  $("#seed").value = options.defaults.seed;
  $("#limits").textContent = `Files: ${options.suffixes.join(" ")}. Up to ${options.max_upload_mb} MB each, ` +
    `${options.max_queue} waiting at once.`;
  $("#mode").addEventListener("change", () => { $("#model-field").hidden = $("#mode").value !== "whitebox"; });
  $("#file-input").addEventListener("change", (event) => { enqueue([...event.target.files]); event.target.value = ""; });
  $("#folder-input").addEventListener("change", (event) => { enqueue([...event.target.files]); event.target.value = ""; });
  const zone = $("#drop-zone");
  zone.addEventListener("dragover", (event) => { event.preventDefault(); zone.classList.add("over"); });
  zone.addEventListener("dragleave", () => zone.classList.remove("over"));
  zone.addEventListener("drop", async (event) => {
    event.preventDefault();
    zone.classList.remove("over");
    enqueue(await droppedFiles(event.dataTransfer));
  });
  poll();
}

// Files of a drop, folders walked (Chromium and Firefox give entries; older browsers only files).
async function droppedFiles(transfer) {
  const entries = [...transfer.items].map((item) => item.webkitGetAsEntry && item.webkitGetAsEntry()).filter(Boolean);
  if (!entries.length) return [...transfer.files];
  const files = [];
  async function walk(entry) {
    if (entry.isFile) {
      files.push(await new Promise((resolve, reject) => entry.file(resolve, reject)));
    } else if (entry.isDirectory) {
      const reader = entry.createReader();
      for (;;) {
        const batch = await new Promise((resolve, reject) => reader.readEntries(resolve, reject));
        if (!batch.length) break;
        for (const child of batch) await walk(child);
      }
    }
  }
  for (const entry of entries) await walk(entry);
  return files;
}

function enqueue(files) {
  const readable = files.filter((file) => options.suffixes.some((suffix) => file.name.toLowerCase().endsWith(suffix)));
  const skipped = files.length - readable.length;
  if (skipped) say(`${skipped} file(s) left out: not a kind of file harmonycloak reads.`);
  for (const file of readable) {
    if (file.size > options.max_upload_mb * 1048576) {
      say(`${file.name}: larger than ${options.max_upload_mb} MB, the limit of this app.`, "error");
    } else {
      uploads.push({ file, settings: currentSettings() });
    }
  }
  uploadNext();
}

function currentSettings() {
  return {
    strength: $("#strength").value, cloak: $("#cloak").value, mode: $("#mode").value,
    preview_s: $("#preview-s").value, rounds: $("#rounds").value, seed: $("#seed").value,
    model: $("#mode").value === "whitebox" ? $("#model-input").files[0] : undefined,
  };
}

function uploadNext() {
  if (uploading || !uploads.length) return;
  uploading = true;
  const { file, settings } = uploads.shift();
  const form = new FormData();
  for (const [key, value] of Object.entries(settings)) if (value !== undefined && key !== "model") form.append(key, value);
  if (settings.model) form.append("model", settings.model, settings.model.name);
  form.append("file", file, file.name); // the base name only: a folder's structure never reaches the server
  const request = new XMLHttpRequest();
  request.open("POST", "/api/jobs");
  request.upload.onprogress = (event) => {
    $("#overall-text").textContent = `Uploading ${file.name}: ${Math.round(100 * event.loaded / event.total)} %`;
  };
  request.onload = () => {
    if (request.status !== 201) {
      let detail = request.statusText;
      try { detail = JSON.parse(request.responseText).detail; } catch (error) { /* not JSON */ }
      say(`${file.name}: ${detail}`, "error");
    }
    finish();
  };
  request.onerror = () => { say(`${file.name}: the upload failed (is the app still running?)`, "error"); finish(); };
  function finish() { uploading = false; poll(); uploadNext(); }
  request.send(form);
}

async function poll() {
  let state;
  try {
    state = await (await fetch("/api/jobs")).json();
  } catch (error) {
    $("#overall-text").textContent = "The app does not answer: is it still running?";
    return;
  }
  draw(state);
}

function draw({ jobs, overall }) {
  const seen = new Set();
  for (const job of jobs) {
    seen.add(job.id);
    if (!rows.has(job.id)) rows.set(job.id, newRow(job));
    update(rows.get(job.id), job);
  }
  for (const [id, row] of rows) if (!seen.has(id)) { row.remove(); rows.delete(id); }
  $("#overall-fill").style.width = `${100 * overall.fraction_done}%`;
  let text = overall.jobs ? `${overall.done} of ${overall.jobs} file(s) protected` : "No files yet.";
  if (overall.running + overall.queued) {
    text += overall.eta_s === null ? " · estimating the time left…" : ` · about ${duration(overall.eta_s)} left`;
  }
  if (!uploading) $("#overall-text").textContent = text;
  $("#download-all").hidden = overall.done === 0;
}

function newRow(job) {
  const row = $("#job-template").content.firstElementChild.cloneNode(true);
  row.id = `job-${job.id}`;
  row.dataset.id = job.id;
  $(".name", row).textContent = job.name;
  $(".cancel", row).addEventListener("click", () => fetch(`/api/jobs/${job.id}/cancel`, { method: "POST" }).then(poll));
  $(".remove", row).addEventListener("click", () => fetch(`/api/jobs/${job.id}`, { method: "DELETE" }).then(poll));
  const original = $(".ab-original", row);
  const protectedPlayer = $(".ab-protected", row);
  // A/B: one plays at a time; switching keeps the moment, so the same bar is heard both ways.
  function play(player, other) {
    if (!other.paused || other.currentTime > 0) player.currentTime = other.currentTime;
    other.pause();
    player.play();
  }
  $(".play-original", row).addEventListener("click", () => play(original, protectedPlayer));
  $(".play-protected", row).addEventListener("click", () => play(protectedPlayer, original));
  original.addEventListener("play", () => protectedPlayer.pause());
  protectedPlayer.addEventListener("play", () => original.pause());
  $("#jobs").append(row);
  return row;
}

function update(row, job) {
  row.dataset.state = job.state;
  const running = job.state === "running";
  const finished = ["done", "failed", "cancelled"].includes(job.state);
  let state = job.state === "running" ? job.phase : job.state;
  if (job.settings.preview_s) state += ` (preview ${job.settings.preview_s} s)`;
  $(".state", row).textContent = state;
  $(".fill", row).style.width = `${100 * job.fraction_done}%`;
  $(".eta", row).textContent = running && job.eta_s ? `about ${duration(job.eta_s)} left`
    : job.state === "done" ? `took ${duration(job.elapsed_s)}` : "";
  $(".cancel", row).hidden = finished;
  $(".remove", row).hidden = !finished;
  const error = $(".error", row);
  error.hidden = !job.error && !job.warnings.length;
  error.textContent = [job.error, ...job.warnings].filter(Boolean).join(" · ");
  if (job.state !== "done" || row.dataset.drawn) return;
  row.dataset.drawn = "yes"; // the finished part is drawn once, so the players keep their place
  const download = $(".download", row);
  download.href = `/api/jobs/${job.id}/output`;
  download.textContent = `Download ${job.output_name}`;
  download.hidden = false;
  $(".finished", row).hidden = false;
  const verdict = $(".verdict", row);
  verdict.textContent = job.verdict;
  verdict.classList.add(job.inaudible === true ? "yes" : job.inaudible === false ? "no" : "unknown");
  if (job.has_ab) {
    $(".ab", row).hidden = false;
    $(".ab-original", row).src = `/api/jobs/${job.id}/ab/original`;
    $(".ab-protected", row).src = `/api/jobs/${job.id}/ab/protected`;
    const gain = job.ab_protected_gain_db;
    $(".ab-note", row).textContent = `The same ${job.ab_seconds.toFixed(1)} s of both. Loudness-matched: ` +
      `the protected excerpt plays ${Math.abs(gain).toFixed(2)} dB ${gain >= 0 ? "louder" : "quieter"} than it is.`;
  }
  if (job.has_picture) {
    $(".picture", row).hidden = false;
    $(".report", row).src = `/api/jobs/${job.id}/report.png`;
  }
}

setInterval(poll, POLL_MS);
document.addEventListener("DOMContentLoaded", start);
