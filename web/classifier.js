// The exported models on ONNX Runtime Web (wasm), vendored into ./vendor by `make web` (never a CDN).
// Each model's preprocessing contract comes from models/index.json, which `mlpipes serve` builds
// from the ONNX metadata that export-onnx wrote.
import * as ort from "./vendor/ort.wasm.min.mjs";

ort.env.wasm.wasmPaths = new URL("./vendor/", import.meta.url).href;
const params = new URLSearchParams(location.search);
// One thread is fastest for one small image; ?threads=N tries more (needs COOP/COEP, which serve sends).
ort.env.wasm.numThreads = Number(params.get("threads") || 1);

export { ort };

/** The models the server offers: [{pipeline, model_version, labels, image_size, drawing, url, ...}]. */
export async function listModels() {
  const response = await fetch("models/index.json", { cache: "no-store" });
  if (!response.ok) throw new Error(`models/index.json: HTTP ${response.status}; run export-onnx and mlpipes serve`);
  return (await response.json()).models;
}

export class Classifier {
  /** Load an exported model; `loadMs` is the time from fetch to a session ready to run. */
  static async load(info) {
    const started = performance.now();
    const response = await fetch(info.url);
    if (!response.ok) throw new Error(`${info.url}: HTTP ${response.status}`);
    const bytes = new Uint8Array(await response.arrayBuffer());
    const session = await Classifier.session(bytes);
    const classifier = new Classifier(info, session);
    classifier.loadMs = performance.now() - started;
    classifier.bytes = bytes;
    return classifier;
  }

  static session(bytes) {
    return ort.InferenceSession.create(bytes, { executionProviders: ["wasm"], graphOptimizationLevel: "all" });
  }

  constructor(info, session) {
    this.info = info;
    this.labels = info.labels;
    this.size = info.image_size;
    this.session = session;
    // Calibration: the trainer fits T on its own validation split and export-onnx stores it in
    // the metadata; softmax(logits / T) makes "80 %" mean right about four times in five.
    // Models exported before calibration existed have none: T = 1, the plain softmax.
    const t = Number(info.temperature ?? 1);
    this.temperature = Number.isFinite(t) && t > 0 ? t : 1;
  }

  /** Logits for a batch: images is a Float32Array of n*size*size values in [0, 1] (NCHW, one channel). */
  async logits(images, n = 1) {
    const input = new ort.Tensor("float32", images, [n, 1, this.size, this.size]);
    const output = await this.session.run({ images: input });
    return output.logits.data;
  }

  /** Calibrated class probabilities (softmax of logits / temperature) for a batch, as an array of Float32Arrays. */
  async predict(images, n = 1) {
    const logits = await this.logits(images, n);
    const classes = this.labels.length;
    const result = [];
    for (let b = 0; b < n; b++) {
      result.push(softmax(logits.subarray(b * classes, (b + 1) * classes), this.temperature));
    }
    return result;
  }

  /** Median per-image latency of predict() over `runs` single-image calls after `warmup` calls, and load times. */
  async benchmark({ runs = 1000, warmup = 50 } = {}) {
    const image = new Float32Array(this.size * this.size);
    for (let i = 0; i < image.length; i++) image[i] = ((i * 7919) % 255) / 255;
    for (let i = 0; i < warmup; i++) await this.predict(image);
    const times = new Float64Array(runs);
    for (let i = 0; i < runs; i++) {
      const t = performance.now();
      await this.predict(image);
      times[i] = performance.now() - t;
    }
    times.sort();
    const t = performance.now();
    await (await Classifier.session(this.bytes)).release();
    const sessionMs = performance.now() - t;
    return {
      pipeline: this.info.pipeline,
      model_version: this.info.model_version,
      runs,
      median_ms: times[Math.floor(runs / 2)],
      p90_ms: times[Math.floor(runs * 0.9)],
      load_ms: this.loadMs, // first load: fetch + session, including the wasm runtime's start
      session_ms: sessionMs, // a session for the same bytes once the runtime runs: the model's own cost
      threads: ort.env.wasm.numThreads,
      cross_origin_isolated: globalThis.crossOriginIsolated === true,
    };
  }
}

/** softmax(logits / temperature), computed in float64 and returned as a Float32Array. */
export function softmax(logits, temperature = 1) {
  let max = -Infinity;
  for (const v of logits) max = Math.max(max, v);
  const out = new Float32Array(logits.length);
  let sum = 0;
  for (let i = 0; i < logits.length; i++) sum += out[i] = Math.exp((logits[i] - max) / temperature);
  for (let i = 0; i < out.length; i++) out[i] /= sum;
  return out;
}

/** The k most probable labels: [{label, probability}], best first. */
export function topK(probabilities, labels, k = 3) {
  return Array.from(probabilities, (p, i) => ({ label: labels[i], probability: p }))
    .sort((a, b) => b.probability - a.probability)
    .slice(0, k);
}

// When the page admits it is unsure: the best class below SURE, or the runner-up within CLOSE of it.
export const SURE = 0.6;
export const CLOSE = 0.2;

/**
 * What the page says about a top-k list ([{label, probability}], best first): a confident
 * answer ("7") or, when calibrated confidence is low or the top two are close, "maybe u or v".
 */
export function verdict(top, { sure = SURE, close = CLOSE } = {}) {
  if (top.length === 0) return { sure: false, text: "" };
  const [first, second] = top;
  const unsure = first.probability < sure || (second !== undefined && first.probability - second.probability < close);
  if (!unsure) return { sure: true, text: first.label };
  return { sure: false, text: second === undefined ? `maybe ${first.label}` : `maybe ${first.label} or ${second.label}` };
}
