// tenku web page: talks to the same /v1 API as the openai SDK. No build step, no dependencies.
"use strict";

const $ = (id) => document.getElementById(id);
const cards = new Map(); // video id -> {el, status, blobUrl}

function apiKey() { return localStorage.getItem("tenku-api-key") || ""; }

function headers(extra) {
  const h = Object.assign({}, extra || {});
  const key = apiKey();
  if (key) h["Authorization"] = "Bearer " + key;
  return h;
}

async function api(method, path, body) {
  const opts = { method, headers: headers() };
  if (body instanceof FormData) opts.body = body;
  else if (body !== undefined) { opts.body = JSON.stringify(body); opts.headers["Content-Type"] = "application/json"; }
  const res = await fetch(path, opts);
  if (!res.ok) {
    let msg = res.status + " " + res.statusText;
    try { const j = await res.json(); if (j.error && j.error.message) msg = j.error.message; } catch (e) { /* not JSON */ }
    throw new Error(msg);
  }
  return res;
}

function showError(msg) { $("form-error").textContent = msg || ""; }

function fillSelect(select, values, chosen) {
  select.innerHTML = "";
  for (const v of values) {
    const o = document.createElement("option");
    o.value = v; o.textContent = v; if (v === chosen) o.selected = true;
    select.appendChild(o);
  }
}

async function loadModel() {
  try {
    const res = await api("GET", "/v1/models");
    const m = (await res.json()).data[0];
    const c = m.capabilities;
    fillSelect($("size"), c.sizes, c.default_size);
    fillSelect($("seconds"), c.seconds, c.default_seconds);
    $("model-info").textContent = "model " + m.id + " · " + c.fps + " fps";
    return true;
  } catch (e) {
    $("key-row").hidden = false;
    $("model-info").textContent = "enter an API key to use this server";
    showError(e.message);
    return false;
  }
}

function cardFor(video) {
  let c = cards.get(video.id);
  if (c) return c;
  const el = $("card-template").content.firstElementChild.cloneNode(true);
  el.dataset.id = video.id;
  c = { el, status: null, blobUrl: null };
  cards.set(video.id, c);
  $("gallery").prepend(el);
  el.querySelector(".remix").addEventListener("click", () => derived("remix", video.id));
  el.querySelector(".extend").addEventListener("click", () => derived("extend", video.id));
  el.querySelector(".edit").addEventListener("click", () => derived("edit", video.id));
  el.querySelector(".delete").addEventListener("click", async () => {
    try { await api("DELETE", "/v1/videos/" + video.id); } catch (e) { showError(e.message); return; }
    if (c.blobUrl) URL.revokeObjectURL(c.blobUrl);
    el.remove(); cards.delete(video.id);
  });
  return c;
}

async function showResult(c, video) {
  const res = await api("GET", "/v1/videos/" + video.id + "/content?variant=video");
  c.blobUrl = URL.createObjectURL(await res.blob());
  const v = document.createElement("video");
  v.src = c.blobUrl; v.controls = true; v.loop = true; v.muted = true; v.autoplay = true; v.playsInline = true;
  c.el.querySelector(".media").replaceChildren(v);
  v.play().catch(() => { /* autoplay may be refused; controls remain */ });
  const a = c.el.querySelector(".download");
  a.href = c.blobUrl; a.download = video.id + ".mp4"; a.hidden = false;
  for (const k of [".remix", ".extend", ".edit"]) c.el.querySelector(k).hidden = false;
}

function render(video) {
  const c = cardFor(video);
  const el = c.el;
  el.dataset.status = video.status;
  el.querySelector(".prompt").textContent = video.prompt || "";
  const from = video.remixed_from_video_id ? " · remix of " + video.remixed_from_video_id.slice(0, 14) : "";
  el.querySelector(".meta").textContent = video.size + " · " + video.seconds + " s" + from;
  el.querySelector("progress").value = video.progress || 0;
  el.querySelector("progress").hidden = video.status === "completed" || video.status === "failed";
  el.querySelector(".status").textContent = video.status === "failed"
    ? "failed: " + (video.error ? video.error.code + ": " + video.error.message : "unknown reason")
    : video.status + (video.status === "completed" ? "" : " " + (video.progress || 0) + "%");
  if (video.status === "completed" && c.status !== "completed") {
    c.status = "completed";
    showResult(c, video).catch((e) => { el.querySelector(".status").textContent = "download failed: " + e.message; });
  } else if (video.status !== "completed") {
    c.status = video.status;
  }
  if (video.status === "queued" || video.status === "in_progress") watch(video.id);
}

const watching = new Set();
function watch(id) {
  if (watching.has(id)) return;
  watching.add(id);
  const tick = async () => {
    if (!cards.has(id)) { watching.delete(id); return; }
    try {
      const res = await api("GET", "/v1/videos/" + id);
      const v = await res.json();
      watching.delete(id);
      render(v);
    } catch (e) {
      watching.delete(id);
      const c = cards.get(id);
      if (c) c.el.querySelector(".status").textContent = "error: " + e.message;
    }
  };
  setTimeout(tick, 400);
}

async function derived(kind, id) {
  const prompt = $("prompt").value.trim();
  if (!prompt) { showError("write a prompt first: it directs the " + kind); return; }
  showError("");
  try {
    let res;
    if (kind === "remix") res = await api("POST", "/v1/videos/" + id + "/remix", { prompt });
    else if (kind === "extend") res = await api("POST", "/v1/videos/extensions", { prompt, video: { id }, seconds: $("seconds").value });
    else res = await api("POST", "/v1/videos/edits", { prompt, video: { id } });
    render(await res.json());
  } catch (e) { showError(e.message); }
}

async function submit(ev) {
  ev.preventDefault();
  showError("");
  const fd = new FormData();
  fd.append("prompt", $("prompt").value);
  fd.append("size", $("size").value);
  fd.append("seconds", $("seconds").value);
  if ($("mode").value === "image") {
    const f = $("image").files[0];
    if (!f) { showError("choose an image for image-to-video"); return; }
    fd.append("input_reference", f);
  }
  $("submit").disabled = true;
  try {
    const res = await api("POST", "/v1/videos", fd);
    render(await res.json());
  } catch (e) {
    showError(e.message);
  } finally {
    $("submit").disabled = false;
  }
}

async function loadList() {
  const res = await api("GET", "/v1/videos?limit=50&order=asc");
  for (const v of (await res.json()).data) render(v);
}

async function init() {
  $("api-key").value = apiKey();
  $("api-key").addEventListener("change", async () => {
    localStorage.setItem("tenku-api-key", $("api-key").value.trim());
    showError("");
    if (await loadModel()) loadList().catch((e) => showError(e.message));
  });
  $("mode").addEventListener("change", () => { $("image-label").hidden = $("mode").value !== "image"; });
  $("create-form").addEventListener("submit", submit);
  if (await loadModel()) {
    if (apiKey()) $("key-row").hidden = false;
    loadList().catch((e) => showError(e.message));
  }
}

init();
