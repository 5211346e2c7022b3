// The page: a drawing pad, the model's top 3, and collect mode for new letter data.
// Everything the tests and benchmarks drive is on `window.app` (see docs/web.md).
import { Classifier, listModels, topK, verdict } from "./classifier.js";
import { canvasGray, frameInk } from "./preprocess.js";
import { gzip, tar } from "./tar.js";

const TITLES = { mnist: "Digits", ascii_letter: "Letters" };
const LETTERS = "abcdefghijklmnopqrstuvwxyz".split("");
// Until a letter model is served, collect mode frames letters as the letter model's export does
// (AsciiLetterConfig.drawing: the generator pads the ink's longer side to 23 px of 32 on average);
// a served model's own metadata (its `drawing`) takes precedence.
const LETTER_DRAWING = { size: 32, box: 23, center: "mass" };
const PEN = 20; // px on the 280 px pad: ~2 px after scaling to MNIST's 20 px box, like its strokes

const $ = (id) => document.getElementById(id);
const pad = $("pad");
const ctx = pad.getContext("2d", { willReadFrequently: true }); // read back after every stroke

const state = {
  models: {}, // pipeline -> Classifier
  mode: null, // the pipeline being drawn for
  strokes: [], // [[{x, y}, ...], ...] in pad pixels
  painted: false, // the pad holds an image put there by app.paint (tests), not strokes
  last: null, // {pipeline, top: [{label, probability}], probabilities, verdict: {sure, text}}
  pending: null, // the prediction being computed (a Promise)
  samples: [], // collect mode: [{label, image: Float32Array, size, png: Promise<Uint8Array>}]
};

// ---- drawing -------------------------------------------------------------------------------
function redraw() {
  ctx.fillStyle = "#000";
  ctx.fillRect(0, 0, pad.width, pad.height);
  ctx.strokeStyle = "#fff";
  ctx.fillStyle = "#fff";
  ctx.lineWidth = PEN;
  ctx.lineCap = "round";
  ctx.lineJoin = "round";
  for (const stroke of state.strokes) {
    if (stroke.length === 1) {
      ctx.beginPath();
      ctx.arc(stroke[0].x, stroke[0].y, PEN / 2, 0, 2 * Math.PI);
      ctx.fill();
      continue;
    }
    ctx.beginPath();
    ctx.moveTo(stroke[0].x, stroke[0].y);
    for (const p of stroke.slice(1)) ctx.lineTo(p.x, p.y);
    ctx.stroke();
  }
}

function point(event) {
  const rect = pad.getBoundingClientRect();
  return {
    x: ((event.clientX - rect.left) * pad.width) / rect.width,
    y: ((event.clientY - rect.top) * pad.height) / rect.height,
  };
}

let drawing = false;
pad.addEventListener("pointerdown", (event) => {
  drawing = true;
  pad.setPointerCapture(event.pointerId);
  state.strokes.push([point(event)]);
  redraw();
});
pad.addEventListener("pointermove", (event) => {
  if (!drawing) return;
  // Browsers deliver one pointermove per frame; the points in between are its coalesced events.
  const events = event.getCoalescedEvents?.() ?? [];
  const stroke = state.strokes[state.strokes.length - 1];
  for (const e of events.length ? events : [event]) stroke.push(point(e));
  redraw();
});
for (const type of ["pointerup", "pointercancel"]) {
  pad.addEventListener(type, () => {
    if (!drawing) return;
    drawing = false;
    predict();
  });
}

function undo() {
  state.strokes.pop();
  redraw();
  predict();
}

function clear() {
  state.strokes = [];
  state.painted = false;
  redraw();
  predict();
}

/** Start an update of the prediction; `app.settled()` waits for the latest one (tests, replays). */
function predict() {
  state.pending = update();
  return state.pending;
}

// ---- inference -------------------------------------------------------------------------------
function drawingFor(pipeline) {
  const model = state.models[pipeline];
  return model ? model.info.drawing : LETTER_DRAWING;
}

/** The pad as the named model sees it: Float32Array(size*size). */
function framed(pipeline) {
  const { pixels, width, height } = canvasGray(pad);
  return frameInk(pixels, width, height, drawingFor(pipeline));
}

function showPreview(image, size) {
  const small = new OffscreenCanvas(size, size);
  small.getContext("2d").putImageData(grayImageData(image, size), 0, 0);
  const preview = $("preview").getContext("2d");
  preview.imageSmoothingEnabled = false;
  preview.clearRect(0, 0, 112, 112);
  preview.drawImage(small, 0, 0, 112, 112);
}

function grayImageData(image, width, height = width) {
  const data = new ImageData(width, height);
  for (let i = 0; i < image.length; i++) {
    const v = Math.round(image[i] * 255);
    data.data.set([v, v, v, 255], i * 4);
  }
  return data;
}

function showTop(top) {
  const said = verdict(top);
  $("answer").textContent = said.text;
  $("answer").classList.toggle("unsure", !said.sure);
  $("top3").replaceChildren(
    ...top.map(({ label, probability }) => {
      const li = document.createElement("li");
      li.innerHTML = `<span class="label"></span><span class="bar"></span><span class="pct"></span>`;
      li.querySelector(".label").textContent = label;
      li.querySelector(".bar").style.width = `${(probability * 100).toFixed(1)}%`;
      li.querySelector(".pct").textContent = `${(probability * 100).toFixed(1)}%`;
      return li;
    }),
  );
}

async function update() {
  const model = state.models[state.mode];
  if (!model) return;
  if (state.strokes.length === 0 && !state.painted) {
    state.last = null;
    showTop([]);
    showPreview(new Float32Array(model.size * model.size), model.size);
    return;
  }
  const image = framed(state.mode);
  showPreview(image, model.size);
  const [probabilities] = await model.predict(image);
  const top = topK(probabilities, model.labels);
  state.last = { pipeline: state.mode, top, probabilities: Array.from(probabilities), verdict: verdict(top) };
  showTop(state.last.top);
}

function setMode(pipeline) {
  state.mode = pipeline;
  for (const button of $("modes").children) button.setAttribute("aria-pressed", button.dataset.pipeline === pipeline);
  const model = state.models[pipeline];
  $("status").textContent = `${pipeline} ${model.info.model_version} · loaded in ${model.loadMs.toFixed(0)} ms`;
  return predict();
}

// ---- collect mode ----------------------------------------------------------------------------
function addSample() {
  if (state.strokes.length === 0) return null;
  const drawing = drawingFor("ascii_letter");
  const sample = { label: $("collect-label").value, image: framed("ascii_letter"), size: drawing.size };
  // Encode now, in the background: the download must start while the click still counts as the
  // user's (browsers drop a download that comes seconds after the click).
  sample.png = png(sample.image, sample.size);
  state.samples.push(sample);
  $("collect-count").textContent = `${state.samples.length} samples`;
  $("collect-download").disabled = false;
  clear();
  return sample;
}

async function png(image, size) {
  const canvas = new OffscreenCanvas(size, size);
  canvas.getContext("2d").putImageData(grayImageData(image, size), 0, 0);
  const blob = await canvas.convertToBlob({ type: "image/png" });
  return new Uint8Array(await blob.arrayBuffer());
}

/** The collected samples as a gzipped tar of images/<letter>/<NN>.png. */
async function collectTarball() {
  const counts = {};
  const files = [];
  for (const sample of state.samples) {
    const n = (counts[sample.label] = (counts[sample.label] ?? -1) + 1);
    const bytes = await (sample.png ?? png(sample.image, sample.size));
    files.push({ name: `images/${sample.label}/${String(n).padStart(2, "0")}.png`, bytes });
  }
  return gzip(tar(files));
}

async function download() {
  const bytes = await collectTarball();
  const link = document.createElement("a");
  link.href = URL.createObjectURL(new Blob([bytes], { type: "application/gzip" }));
  link.download = "images.tar.gz";
  link.click();
  setTimeout(() => URL.revokeObjectURL(link.href), 10_000);
}

function setUpCollect() {
  const labels = state.models.ascii_letter?.labels ?? LETTERS;
  $("collect-label").replaceChildren(...labels.map((l) => new Option(l, l)));
  $("collect").addEventListener("change", (e) => ($("collect-panel").hidden = !e.target.checked));
  $("collect-add").addEventListener("click", addSample);
  $("collect-download").addEventListener("click", download);
  document.addEventListener("keydown", (e) => {
    if (e.key === "Enter" && $("collect").checked) addSample();
  });
}

// ---- start -----------------------------------------------------------------------------------
async function start() {
  redraw();
  $("undo").addEventListener("click", undo);
  $("clear").addEventListener("click", clear);
  const infos = await listModels();
  const loaded = await Promise.all(infos.map((info) => Classifier.load(info)));
  infos.forEach((info, i) => (state.models[info.pipeline] = loaded[i]));
  const rank = (pipeline) => (pipeline in TITLES ? Object.keys(TITLES).indexOf(pipeline) : 99);
  const pipelines = Object.keys(state.models).sort((a, b) => rank(a) - rank(b)); // Digits first
  $("modes").replaceChildren(
    ...pipelines.map((pipeline) => {
      const button = document.createElement("button");
      button.type = "button";
      button.dataset.pipeline = pipeline;
      button.textContent = TITLES[pipeline] ?? pipeline;
      button.addEventListener("click", () => setMode(pipeline));
      return button;
    }),
  );
  setUpCollect();
  const first = pipelines[0];
  if (!first) throw new Error("no models served: run export-onnx, then mlpipes serve");
  await setMode(first);
}

window.app = {
  state,
  ready: start().catch((error) => {
    $("status").textContent = `error: ${error.message}`;
    throw error;
  }),
  setMode,
  verdict,
  /** Wait until the prediction for the pad's current strokes is shown. */
  settled: () => state.pending,
  undo,
  clear,
  addSample,
  collectTarball,
  frameInk,
  /** Replace the pad's strokes ([[{x, y}, ...], ...] in pad pixels) without predicting: bulk collection. */
  setStrokes: (strokes) => {
    state.strokes = strokes;
    state.painted = false;
    redraw();
  },
  /** Put a gray image (values in [0, 1], white on black) on the pad and predict it like a drawing. */
  paint: async (gray, width, height) => {
    state.strokes = [];
    redraw();
    ctx.putImageData(grayImageData(gray, width, height), 0, 0);
    state.painted = true;
    await predict();
    return state.last;
  },
  /** Run `n` images (Float32Array, n*size*size) through the page's model for `pipeline`. */
  classify: (pipeline, images, n) => state.models[pipeline].predict(images, n),
  /** Median latency over `runs` single-image predictions, and the model's load time. */
  benchmark: (pipeline, options) => state.models[pipeline ?? state.mode].benchmark(options),
  padPixels: () => {
    const { pixels, width, height } = canvasGray(pad);
    return { pixels: Array.from(pixels), width, height };
  },
};
