// The review page: one sample at a time, decisions by keyboard or mouse. Every label, note, reason and file
// name is set as text (textContent / value), never parsed as HTML.
"use strict";

const state = { config: null, labeler: "", indices: [], decided: new Set(), pos: 0, item: null, zoom: 1, busy: null,
  shown: 0 };
const $ = (id) => document.getElementById(id);

function el(tag, attrs = {}, text = null) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
  if (text !== null) node.textContent = text;
  return node;
}

function say(message, isError = false) {
  $("status").textContent = message;
  $("status").classList.toggle("error", isError);
}

function requestId() {
  if (window.crypto && crypto.randomUUID) return crypto.randomUUID();
  return `${Date.now()}-${Math.random().toString(16).slice(2)}`;
}

async function api(path, body = null) {
  const init = body === null ? {} : {
    method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body),
  };
  const response = await fetch(path, init);
  const data = await response.json().catch(() => ({ error: `HTTP ${response.status}` }));
  if (!response.ok) throw new Error(data.error || `HTTP ${response.status}`);
  return data;
}

function player(url, modality) {
  const box = el("div");
  if (modality === "image") {
    const view = el("div", { class: "viewport" });
    const img = el("img", { class: "zoomable", src: url, alt: "sample" });
    img.addEventListener("load", () => applyZoom(img));
    view.appendChild(img);
    view.addEventListener("wheel", (e) => { e.preventDefault(); setZoom(state.zoom * (e.deltaY < 0 ? 1.25 : 0.8)); });
    const zoom = el("div", { class: "zoom" });
    for (const [label, factor] of [["−", 0.8], ["+", 1.25], ["fit", 0]]) {
      const b = el("button", { type: "button" }, label);
      b.addEventListener("click", () => setZoom(factor === 0 ? 1 : state.zoom * factor));
      zoom.appendChild(b);
    }
    box.append(zoom, view);
  } else {
    box.append(el("audio", { controls: "", preload: "auto", src: url }),
      el("img", { class: "spectrogram", src: `${url}?view=spectrogram`, alt: "log-mel spectrogram" }));
  }
  return box;
}

function applyZoom(img) {
  const base = Math.max(1, Math.floor(320 / Math.max(img.naturalWidth, img.naturalHeight, 1)));
  img.style.width = `${img.naturalWidth * base * state.zoom}px`;
}

function setZoom(z) {
  state.zoom = Math.min(16, Math.max(0.25, z));
  const img = document.querySelector("#media img.zoomable");
  if (img) applyZoom(img);
}

function renderBook() {
  const book = $("book");
  book.replaceChildren();
  for (const [label, urls] of Object.entries(state.config.book)) {
    const card = el("div", { class: "book-class" });
    card.appendChild(el("strong", {}, label));
    for (const url of urls) {
      card.appendChild(state.config.modality === "image" ? el("img", { src: url, alt: label })
        : el("audio", { controls: "", preload: "none", src: url }));
    }
    book.appendChild(card);
  }
}

function renderRelabel() {
  const row = $("relabel");
  row.replaceChildren();
  $("label-list").replaceChildren();
  state.config.labels.forEach((label) => {
    const b = el("button", { type: "button", "data-label": label }, label);
    b.addEventListener("click", () => decide("relabel", label));
    row.appendChild(b);
    $("label-list").appendChild(el("option", { value: label }));
  });
}

function renderItem() {
  const item = state.item;
  const cfg = state.config;
  $("position").textContent = `${state.pos + 1} of ${state.indices.length}`;
  $("media").replaceChildren(player(item.url, cfg.modality));
  $("file").textContent = item.file;
  $("sample-id").textContent = item.id;
  $("source").hidden = !item.source;
  if (item.source) {
    $("source-id").textContent = item.source.id;
    $("source-media").replaceChildren(player(item.source.url, cfg.modality));
  }
  $("proposed-row").hidden = cfg.blind;
  $("proposed").textContent = item.label ?? "";
  $("suggested-row").hidden = !item.suggested || item.suggested === item.label;
  $("suggested").textContent = item.suggested ?? "";
  $("reason").textContent = `${item.reason} [${item.slice}]`;
  const scores = $("scores");
  scores.replaceChildren();
  for (const [name, value] of Object.entries(item.scores)) {
    const tr = el("tr");
    tr.append(el("td", {}, name), el("td", {}, value === null ? "–" : value.toFixed(2)));
    scores.appendChild(tr);
  }
  const mine = item.mine;
  $("mine").textContent = mine ? `Your decision: ${mine.decision}${mine.label ? ` (${mine.label})` : ""}` : "Not decided by you yet";
  $("note").value = mine ? mine.note : "";
  for (const b of document.querySelectorAll("#relabel button")) {
    b.classList.toggle("chosen", !!mine && mine.decision === "relabel" && b.dataset.label === mine.label);
  }
  for (const verb of ["accept", "reject", "unsure"]) {
    $(`btn-${verb}`).classList.toggle("chosen", !!mine && mine.decision === verb);
  }
}

function renderProgress(data) {
  $("progress").textContent =
    `${data.decided.length} of ${data.indices.length} decided in this filter · ${data.decided_total} of ${data.total} in all`;
}

async function loadList(keepIndex = null) {
  const q = new URLSearchParams({ labeler: state.labeler, slice: $("filter-slice").value, reason: $("filter-reason").value });
  const data = await api(`/api/items?${q}`);
  state.indices = data.indices;
  state.decided = new Set(data.decided);
  renderProgress(data);
  const empty = state.indices.length === 0;
  $("empty").hidden = !empty;
  $("main").hidden = empty;
  if (empty) return;
  let pos = keepIndex === null ? -1 : state.indices.indexOf(keepIndex);
  if (pos < 0) pos = state.indices.findIndex((i) => !state.decided.has(i));
  await show(pos < 0 ? 0 : pos);
}

async function show(pos) {
  if (pos < 0 || pos >= state.indices.length) return;
  const asked = ++state.shown;  // the latest call wins: an answer that comes back after a newer one is dropped
  const item = await api(`/api/items/${state.indices[pos]}?labeler=${encodeURIComponent(state.labeler)}`);
  if (asked !== state.shown) return;
  state.pos = pos;
  state.item = item;
  renderItem();
}

function nextUndecided() {
  const n = state.indices.length;
  for (let step = 1; step <= n; step++) {
    const p = (state.pos + step) % n;
    if (!state.decided.has(state.indices[p])) return p;
  }
  return Math.min(state.pos + 1, n - 1);
}

function exclusive(action) {
  // One decision or undo at a time, from the request until the next sample shows: a key pressed again before
  // the page has moved on is dropped (it would decide a sample the labeler has not seen). `state.busy` holds the
  // running action, so a filter change waits for it instead of racing it.
  if (state.busy) return state.busy;
  state.busy = action().finally(() => { state.busy = null; });
  return state.busy;
}

function decide(decision, label = null) {
  if (!state.item) return false;
  if (state.busy) { say("Still saving the last decision: press again once the next sample shows", true); return false; }
  const item = state.item;  // what the labeler sees now, whatever shows by the time the answer comes back
  const index = state.indices[state.pos];
  exclusive(async () => {
    let saved;
    try {
      const body = { labeler: state.labeler, sample_id: item.id, decision, label, note: $("note").value,
        request_id: requestId() };
      const s = (await api("/api/decisions", body)).stored;
      saved = `Saved: ${s.decision}${state.config.blind ? "" : ` (${s.label})`} for ${s.sample_id}`;
      state.decided.add(index);
      await loadList(index);
      await show(nextUndecided());
      say(saved);
    } catch (err) {
      say(saved ? `${saved}, but the next sample did not load: ${err.message}` : err.message, true);
    }
  });
  return true;
}

function undo() {
  return exclusive(async () => {
    try {
      const data = await api("/api/undo", { labeler: state.labeler });
      if (!data.undone) { say("Nothing to undo"); return; }
      await loadList(state.config.ids.indexOf(data.undone.sample_id));
      say(`Undone: ${data.undone.decision} on ${data.undone.sample_id}`);
    } catch (err) {
      say(err.message, true);
    }
  });
}

function relabelByKey(key) {
  const labels = state.config.labels;
  if (labels.includes(key)) return key;
  const i = Number(key);
  return Number.isInteger(i) && i < labels.length ? labels[i] : null;
}

function onKey(e) {
  if (e.target.closest("input, textarea, select")) {
    if (e.key === "Escape" || (e.key === "Enter" && e.target.id === "labeler")) e.target.blur();
    return;
  }
  if (e.ctrlKey || e.metaKey || e.altKey || !state.item) return;
  const key = e.key;
  const actions = {
    a: () => decide("accept"), x: () => decide("reject"), u: () => decide("unsure"), z: () => undo(),
    j: () => show(state.pos + 1), ArrowRight: () => show(state.pos + 1),
    k: () => show(state.pos - 1), ArrowLeft: () => show(state.pos - 1),
    n: () => $("note").focus(),
    r: () => { $("relabel-form").hidden = false; $("relabel-input").value = ""; $("relabel-input").focus(); },
  };
  if (actions[key]) {
    e.preventDefault();
    if (key === "a" && state.config.blind) { say("Blind mode: name the label (a digit key or r)", true); return; }
    actions[key]();
  } else if (/^[0-9]$/.test(key)) {
    const label = relabelByKey(key);
    if (label !== null) { e.preventDefault(); decide("relabel", label); }
  }
}

async function start() {
  const name = $("labeler").value.trim();
  $("need-name").hidden = !!name;
  if (!name) { $("main").hidden = true; return; }
  state.labeler = name;
  localStorage.setItem("labeler", name);
  await loadList();
}

async function init() {
  const cfg = await api("/api/config");
  state.config = cfg;
  document.title = `Review ${cfg.dataset}`;
  $("dataset").textContent = cfg.dataset;
  $("blind-badge").hidden = !cfg.blind;
  $("btn-accept").hidden = cfg.blind;
  for (const [id, values] of [["filter-slice", cfg.slices], ["filter-reason", cfg.reasons]]) {
    for (const v of values) $(id).appendChild(el("option", { value: v }, v));
    $(id).addEventListener("change", async (e) => {
      e.target.blur();  // shortcuts work at once
      await state.busy;  // a decision still moving the page on finishes first (keys keep deciding what shows)
      await loadList();
    });
  }
  renderBook();
  renderRelabel();
  $("btn-accept").addEventListener("click", () => decide("accept"));
  $("btn-reject").addEventListener("click", () => decide("reject"));
  $("btn-unsure").addEventListener("click", () => decide("unsure"));
  $("btn-undo").addEventListener("click", () => undo());
  $("btn-prev").addEventListener("click", () => show(state.pos - 1));
  $("btn-next").addEventListener("click", () => show(state.pos + 1));
  $("relabel-form").addEventListener("submit", (e) => {
    e.preventDefault();
    if (decide("relabel", $("relabel-input").value.trim())) $("relabel-form").hidden = true;  // kept while busy
  });
  $("labeler").value = localStorage.getItem("labeler") || "";
  $("labeler").addEventListener("change", start);
  document.addEventListener("keydown", onKey);
  await start();
}

init().catch((err) => say(err.message, true));
