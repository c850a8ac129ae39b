// The page's behaviour: status polling, search, motion details, upload, skeleton drawing.
"use strict";

const $ = (id) => document.getElementById(id);
const SIDE_COLOURS = { left: "#1f6fd1", right: "#d1431f", centre: "#333333" };
const jointsCache = new Map();
const animated = new Set();   // canvases being animated: {canvas, data, t0}
let ready = false;

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "class") node.className = v;
    else if (k === "dataset") Object.assign(node.dataset, v);
    else node.setAttribute(k, v);
  }
  for (const c of children) node.append(c instanceof Node ? c : document.createTextNode(String(c)));
  return node;
}

async function api(url, options) {
  let response;
  try {
    response = await fetch(url, options);
  } catch (e) {
    throw new Error("the server does not answer (is `python -m lexmo_jax.serve` still running?)");
  }
  let body;
  try { body = await response.json(); } catch (e) { body = { error: `${response.status} ${response.statusText}` }; }
  if (!response.ok) throw new Error(body.error || `${response.status} ${response.statusText}`);
  return body;
}

function showError(message) {
  const box = $("error");
  box.textContent = message;
  box.hidden = !message;
  if (message) {  // an error replaces the last answer: nothing stale stays under it
    $("summary").replaceChildren();
    $("results").replaceChildren();
    $("uploaded").hidden = true;
  }
}

// ---- status ------------------------------------------------------------------------------
async function pollStatus() {
  let s;
  try { s = await api("/api/status"); } catch (e) { $("status").textContent = e.message; setTimeout(pollStatus, 2000); return; }
  const box = $("status");
  if (s.ready) {
    ready = true;
    box.className = "status ready";
    box.textContent = `${s.workdir} · ${s.phase} step ${s.step} · split ${s.split}: ${s.items} motions · ` +
      `${s.engine} engine · ready after ${s.ready_s} s`;
    return;
  }
  if (s.error) {
    box.className = "status failed";
    box.textContent = `the gallery could not be opened: ${s.error}`;
    return;
  }
  box.className = "status loading";
  box.textContent = `${s.workdir} · split ${s.split}: ${s.stage} (${s.elapsed_s} s)`;
  setTimeout(pollStatus, 500);
}

// ---- bars, cards -------------------------------------------------------------------------
function bars(title, words, cls = "") {
  const box = el("div", { class: `bars ${cls}` }, el("div", { class: "title" }, title));
  const top = Math.max(...words.map((w) => w[1]), 1e-9);
  for (const [word, value] of words) {
    const fill = el("div", { class: "fill", style: `width: ${(100 * value / top).toFixed(1)}%` });
    box.append(el("div", { class: "bar", dataset: { word } }, el("span", { class: "word", title: word }, word),
      el("div", { class: "track" }, fill), el("span", { class: "value" }, value.toFixed(3))));
  }
  if (!words.length) box.append(el("div", { class: "legend" }, "(no word)"));
  return box;
}

function legend() {
  return el("div", { class: "legend" }, el("span", { class: "left" }, "■ left"), " ",
    el("span", { class: "right" }, "■ right"), " ", el("span", { class: "centre" }, "■ spine"));
}

function card(hit, small = false) {
  const canvas = el("canvas", { class: "skeleton", width: small ? 220 : 300, height: small ? 170 : 230 });
  const node = el("div", { class: "card", dataset: { itemId: hit.item_id, rank: hit.rank } },
    el("h3", {}, el("span", { class: "id" }, `#${hit.rank} ${hit.item_id}`), el("span", { class: "score" }, `score ${hit.score.toFixed(3)}`)),
    canvas, el("div", { class: "caption" }, hit.caption),
    bars("matched by (word: contribution to the score)", hit.words, "matched"));
  node.addEventListener("click", () => openDetail(hit.item_id));
  loadJoints(hit.item_id).then((data) => animate(canvas, data)).catch((e) => drawMessage(canvas, e.message));
  return node;
}

function loadJoints(itemId) {
  if (!jointsCache.has(itemId)) {
    const p = api(`/api/joints?id=${encodeURIComponent(itemId)}`);
    p.catch(() => jointsCache.delete(itemId));
    jointsCache.set(itemId, p);
  }
  return jointsCache.get(itemId);
}

// ---- search ------------------------------------------------------------------------------
async function search(event) {
  event.preventDefault();
  showError("");
  const q = $("query").value, mode = $("mode").value, k = $("k").value;
  $("search-button").disabled = true;
  try {
    const r = await api(`/api/search?q=${encodeURIComponent(q)}&mode=${mode}&k=${encodeURIComponent(k)}`);
    const summary = $("summary");
    summary.replaceChildren();
    if (r.mode === "keywords") {
      summary.append(`keywords: ${r.used.join(", ")}`);
      if (r.unknown.length) summary.append(" · ", el("span", { class: "unknown", id: "unknown-words" },
        `not in the vocabulary, left out: ${r.unknown.join(", ")}`));
    } else {
      summary.append(`sentence, read as: ${r.read_as.map(([w, v]) => `${w} ${v.toFixed(2)}`).join(", ")}`);
    }
    if (r.note) summary.append(el("div", { class: "unknown" }, r.note));
    summary.append(el("div", { class: "legend", id: "timing" },
      `${r.hits.length} motions · ${r.answered_by} ${r.search_ms} ms · answered in ${r.total_ms} ms · skeletons: `,
      ...legend().childNodes));
    $("uploaded").hidden = true;
    $("results").replaceChildren(...r.hits.map((h) => card(h)));
  } catch (e) {
    showError(e.message);
  } finally {
    $("search-button").disabled = false;
  }
}

// ---- details -----------------------------------------------------------------------------
async function openDetail(itemId) {
  showError("");
  try {
    const m = await api(`/api/motion?id=${encodeURIComponent(itemId)}`);
    const canvas = el("canvas", { class: "skeleton", width: 520, height: 360 });
    const body = $("detail-body");
    body.replaceChildren(
      el("h2", { id: "detail-title" }, `${m.item_id} (${m.frames} frames)`), canvas, legend(),
      bars("description: the motion's heaviest words (forms of a word added)", m.description, "description"),
      el("h3", {}, "captions"), el("ul", { id: "detail-captions" }, ...m.captions.map((c) => el("li", {}, c))),
      el("h3", {}, "nearest motions"), el("div", { class: "neighbours" }, ...m.neighbours.map((h) => card(h, true))));
    $("detail").hidden = false;
    loadJoints(itemId).then((data) => animate(canvas, data)).catch((e) => drawMessage(canvas, e.message));
  } catch (e) {
    showError(e.message);
  }
}

// ---- upload ------------------------------------------------------------------------------
async function upload(event) {
  event.preventDefault();
  showError("");
  const file = $("motion-file").files[0];
  if (!file) { showError("choose a .npy motion file first"); return; }
  const form = new FormData();
  form.append("motion", file);
  form.append("k", $("k").value);
  $("upload-button").disabled = true;
  try {
    const r = await api("/api/upload", { method: "POST", body: form });
    const canvas = el("canvas", { class: "skeleton", width: 300, height: 230 });
    const box = $("uploaded");
    box.replaceChildren(
      el("div", {}, el("h3", { id: "uploaded-title" }, `${r.filename} (${r.frames} frames)`), canvas, legend()),
      bars("description: the uploaded motion's heaviest words (forms of a word added)", r.description, "description"));
    box.hidden = false;
    animate(canvas, r.joints);
    $("summary").replaceChildren(`closest motions of the gallery to ${r.filename}`,
      el("div", { class: "legend", id: "timing" }, `${r.answered_by} ${r.search_ms} ms · answered in ${r.total_ms} ms · skeletons: `,
        ...legend().childNodes));
    $("results").replaceChildren(...r.hits.map((h) => card(h)));
  } catch (e) {
    showError(e.message);
  } finally {
    $("upload-button").disabled = false;
  }
}

// ---- skeleton drawing --------------------------------------------------------------------
// Joints are (x, y up, z) in metres. The camera turns with the body's root (which stays in
// the middle); the floor grid and the root's path move under it, so travel is visible.
const YAW = Math.PI / 6, TILT = 0.28, GRID = 0.5;

function prepare(data) {
  const frames = data.frames;
  let floor = Infinity, top = -Infinity, reach = 0;
  for (const f of frames) {
    const [rx, , rz] = f[0];
    for (const [x, y, z] of f) {
      floor = Math.min(floor, y); top = Math.max(top, y);
      reach = Math.max(reach, Math.abs(x - rx), Math.abs(z - rz));
    }
  }
  return { ...data, floor, height: top - floor, radius: Math.max(1.15 * reach, 0.6 * (top - floor), 0.5) };
}

function project(s, x, y, z, root, w, h) {
  const dx = x - root[0], dz = z - root[2];
  const sx = dx * Math.cos(YAW) - dz * Math.sin(YAW);
  const depth = dx * Math.sin(YAW) + dz * Math.cos(YAW);
  const scale = Math.min(w / (2.3 * s.radius), h / (s.height + 2 * TILT * s.radius + 0.2));
  return [w / 2 + scale * sx, h - 0.06 * h - scale * (y - s.floor + TILT * (depth + s.radius))];
}

function drawFrame(canvas, s, t) {
  const ctx = canvas.getContext("2d"), w = canvas.width, h = canvas.height;
  const f = s.frames[t], root = f[0];
  ctx.clearRect(0, 0, w, h);
  ctx.lineWidth = 1; ctx.strokeStyle = "#d8d8d8";
  const r = s.radius;
  for (let g = Math.ceil((root[0] - r) / GRID) * GRID; g <= root[0] + r; g += GRID) {
    const a = project(s, g, s.floor, root[2] - r, root, w, h), b = project(s, g, s.floor, root[2] + r, root, w, h);
    ctx.beginPath(); ctx.moveTo(...a); ctx.lineTo(...b); ctx.stroke();
  }
  for (let g = Math.ceil((root[2] - r) / GRID) * GRID; g <= root[2] + r; g += GRID) {
    const a = project(s, root[0] - r, s.floor, g, root, w, h), b = project(s, root[0] + r, s.floor, g, root, w, h);
    ctx.beginPath(); ctx.moveTo(...a); ctx.lineTo(...b); ctx.stroke();
  }
  ctx.strokeStyle = "rgba(200, 40, 40, 0.55)"; ctx.lineWidth = 1.5; ctx.beginPath();
  for (let i = 0; i <= t; i++) {
    const p = s.frames[i][0], q = project(s, p[0], s.floor, p[2], root, w, h);
    if (i === 0) ctx.moveTo(...q); else ctx.lineTo(...q);
  }
  ctx.stroke();
  ctx.lineCap = "round"; ctx.lineJoin = "round"; ctx.lineWidth = Math.max(2, w / 110);
  s.chains.forEach((chain, c) => {
    ctx.strokeStyle = SIDE_COLOURS[s.sides[c]] || "#333"; ctx.beginPath();
    chain.forEach((j, i) => {
      const q = project(s, f[j][0], f[j][1], f[j][2], root, w, h);
      if (i === 0) ctx.moveTo(...q); else ctx.lineTo(...q);
    });
    ctx.stroke();
  });
  ctx.fillStyle = "#666"; ctx.font = "11px sans-serif";
  ctx.fillText(`${(t / s.fps).toFixed(1)} s / ${(s.frames.length / s.fps).toFixed(1)} s`, 6, 14);
}

function animate(canvas, data) {
  const s = prepare(data);
  canvas.dataset.frames = String(s.frames.length);
  animated.add({ canvas, s, t0: performance.now() });
  drawFrame(canvas, s, 0);
}

function drawMessage(canvas, message) {
  const ctx = canvas.getContext("2d");
  ctx.fillStyle = "#8a0010"; ctx.font = "12px sans-serif";
  ctx.fillText(message.slice(0, 60), 6, 20);
}

function tick(now) {
  requestAnimationFrame(tick);
  for (const item of animated) {
    if (!item.canvas.isConnected) { animated.delete(item); continue; }
    const n = item.s.frames.length, pause = Math.round(item.s.fps / 2);  // rest on the last pose
    const elapsed = Math.max(0, now - item.t0) / 1000;
    const t = Math.min(Math.floor(elapsed * item.s.fps) % (n + pause), n - 1);
    item.canvas.dataset.frame = String(t);
    try { drawFrame(item.canvas, item.s, t); } catch (e) { animated.delete(item); drawMessage(item.canvas, String(e)); }
  }
}

$("search-form").addEventListener("submit", search);
$("upload-form").addEventListener("submit", upload);
$("close-detail").addEventListener("click", () => { $("detail").hidden = true; });
document.addEventListener("keydown", (e) => { if (e.key === "Escape") $("detail").hidden = true; });
requestAnimationFrame(tick);
pollStatus();
