// Turn a drawing into the image the model was trained on.
// Mirrors mnist.preprocess.frame_ink and area_weights in Python, step for step and in float64,
// so the browser and Python give the same pixels (tested by web/tests/test_browser.py).

/** (nOut x nIn) row-major weights averaging the input pixels each output pixel covers (box filter). */
export function areaWeights(nIn, nOut) {
  const scale = nIn / nOut;
  const weights = new Float64Array(nOut * nIn);
  for (let i = 0; i < nOut; i++) {
    const lo = i * scale, hi = (i + 1) * scale;
    for (let j = Math.floor(lo); j < Math.min(nIn, Math.ceil(hi)); j++) {
      weights[i * nIn + j] = (Math.min(hi, j + 1) - Math.max(lo, j)) / scale;
    }
  }
  return weights;
}

/**
 * A drawing (height x width, values in [0, 1], white ink on black) -> Float32Array(size*size).
 * Crop to the ink, area-scale so the longer side is `box` pixels (aspect kept), then place it in a
 * size x size frame centred by mass ("mass", MNIST's recipe) or by bounding box ("box").
 */
export function frameInk(pixels, width, height, { size = 28, box = 20, center = "mass" } = {}) {
  const out = new Float32Array(size * size);
  let top = height, bottom = -1, left = width, right = -1;
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      if (pixels[y * width + x] > 0) {
        if (y < top) top = y;
        if (y > bottom) bottom = y;
        if (x < left) left = x;
        if (x > right) right = x;
      }
    }
  }
  if (bottom < 0) return out;
  const h = bottom - top + 1, w = right - left + 1;
  const scale = box / Math.max(h, w);
  const nh = Math.max(1, Math.floor(h * scale + 0.5)), nw = Math.max(1, Math.floor(w * scale + 0.5));
  const wy = areaWeights(h, nh), wx = areaWeights(w, nw);
  // rows first: (nh x w) = wy @ crop, then columns: (nh x nw) = rows @ wx^T
  const rows = new Float64Array(nh * w);
  for (let i = 0; i < nh; i++) {
    for (let j = 0; j < h; j++) {
      const weight = wy[i * h + j];
      if (weight === 0) continue;
      const src = (top + j) * width + left;
      for (let x = 0; x < w; x++) rows[i * w + x] += weight * pixels[src + x];
    }
  }
  const small = new Float64Array(nh * nw);
  for (let i = 0; i < nh; i++) {
    for (let k = 0; k < nw; k++) {
      let sum = 0;
      for (let x = 0; x < w; x++) sum += rows[i * w + x] * wx[k * w + x];
      small[i * nw + k] = Math.min(1, Math.max(0, sum));
    }
  }
  let offsetY, offsetX;
  if (center === "mass") {
    let total = 0, my = 0, mx = 0;
    for (let i = 0; i < nh; i++) {
      for (let k = 0; k < nw; k++) {
        const v = small[i * nw + k];
        total += v;
        my += v * (i + 0.5);
        mx += v * (k + 0.5);
      }
    }
    offsetY = Math.floor(size / 2 - my / total + 0.5);
    offsetX = Math.floor(size / 2 - mx / total + 0.5);
  } else if (center === "box") {
    offsetY = Math.floor((size - nh) / 2);
    offsetX = Math.floor((size - nw) / 2);
  } else {
    throw new Error(`center=${center}: expected "mass" or "box"`);
  }
  offsetY = Math.min(Math.max(offsetY, 0), size - nh);
  offsetX = Math.min(Math.max(offsetX, 0), size - nw);
  for (let i = 0; i < nh; i++) {
    for (let k = 0; k < nw; k++) out[(offsetY + i) * size + offsetX + k] = small[i * nw + k];
  }
  return out;
}

/** A canvas's pixels as gray values in [0, 1] (the red channel: ink is drawn white on black). */
export function canvasGray(canvas) {
  const { width, height } = canvas;
  const rgba = canvas.getContext("2d").getImageData(0, 0, width, height).data;
  const gray = new Float64Array(width * height);
  for (let i = 0; i < gray.length; i++) gray[i] = rgba[i * 4] / 255;
  return { pixels: gray, width, height };
}
