/**
 * The result viewer (templates/removal/_uploader.html): one stage over a checkerboard where
 * a split shows the original on its left and the cut-out on its right, at every position and
 * for every result size; zoom 1×, 2× and 4× with panning by dragging.
 *
 * The "before" layer is a canvas of the result's size into which the original is drawn
 * where the result's pixels came from: the headers give the foreground box in the input
 * (X-Input-Foreground) and in the result (X-Result-Foreground), so crop, margin and target
 * size map the original exactly as they mapped the cut-out. Both canvases are laid over each
 * other and scaled together to fit the viewport (CSS), so device pixels line up.
 */

/** "top left width height" → {top, left, width, height} (Pixian's order). */
export function parseBox(text) {
  const [top, left, width, height] = (text || "0 0 0 0").split(" ").map(Number);
  return { top, left, width, height };
}

/** "width height" → [width, height]. */
export function parseSize(text) {
  const [width, height] = (text || "0 0").split(" ").map(Number);
  return [width, height];
}

/**
 * Where the whole input lands in the result: {x, y, width, height} in result pixels.
 * @param {{inputSize:number[], resultSize:number[], inputForeground:object, resultForeground:object}} g
 */
export function inputPlacement(g) {
  const [iw, ih] = g.inputSize;
  const [rw, rh] = g.resultSize;
  const inFg = g.inputForeground;
  const outFg = g.resultForeground;
  if (!inFg.width || !inFg.height || !outFg.width || !outFg.height) {
    return { x: 0, y: 0, width: rw, height: rh }; // no subject found: the result is the input
  }
  const sx = outFg.width / inFg.width;
  const sy = outFg.height / inFg.height;
  return { x: outFg.left - inFg.left * sx, y: outFg.top - inFg.top * sy, width: iw * sx, height: ih * sy };
}

export class Viewer {
  constructor(root) {
    const $ = (id) => root.querySelector(`#${id}`);
    this.stage = $("stage");
    this.layers = $("layers");
    this.result = $("result-canvas");
    this.before = $("before-canvas");
    this.split = $("split");
    this.slider = $("compare");
    this.original = $("original");
    this.zoomButtons = [...root.querySelectorAll("[data-zoom]")];
    this.zoom = 1;
    this.pan = { x: 0, y: 0 };
    this.geometry = null;
    this.slider.addEventListener("input", () => this.applySplit());
    this.original.addEventListener("load", () => this.drawBefore());
    for (const button of this.zoomButtons) {
      button.addEventListener("click", () => this.setZoom(Number(button.dataset.zoom)));
    }
    this.stage.addEventListener("pointerdown", (event) => this.startPan(event));
    this.applySplit();
  }

  /** Show a result: `image` is ImageData (rebuilt in the browser) or an ImageBitmap. */
  showResult(image, geometry) {
    this.geometry = geometry;
    const [width, height] = geometry.resultSize;
    for (const canvas of [this.result, this.before]) {
      canvas.width = width;
      canvas.height = height;
    }
    const context = this.result.getContext("2d");
    if (image instanceof ImageData) context.putImageData(image, 0, 0);
    else context.drawImage(image, 0, 0);
    this.drawBefore();
  }

  /** The original (or its server preview), drawn where it lies in the result. */
  setOriginal(url) {
    if (url && this.original.getAttribute("src") !== url) this.original.src = url;
    if (!url) this.original.removeAttribute("src");
    this.drawBefore();
  }

  drawBefore() {
    const context = this.before.getContext("2d");
    context.clearRect(0, 0, this.before.width, this.before.height);
    const ready = this.geometry && this.original.complete && this.original.naturalWidth > 0;
    this.before.dataset.drawn = String(Boolean(ready));
    if (!ready) return;
    const place = inputPlacement(this.geometry);
    context.imageSmoothingQuality = "high";
    context.drawImage(this.original, place.x, place.y, place.width, place.height);
  }

  applySplit() {
    const value = Number(this.slider.value);
    this.before.style.clipPath = `inset(0 ${100 - value}% 0 0)`;
    this.split.style.left = `${value}%`;
    this.slider.setAttribute("aria-valuetext", `original left of ${value}%, cut-out right of it`);
  }

  setZoom(zoom) {
    this.zoom = zoom;
    this.pan = { x: 0, y: 0 };
    for (const button of this.zoomButtons) {
      button.setAttribute("aria-pressed", String(Number(button.dataset.zoom) === zoom));
    }
    this.stage.classList.toggle("zoomed", zoom > 1);
    this.applyTransform();
  }

  applyTransform() {
    const { x, y } = this.pan;
    this.layers.style.transform = this.zoom > 1 ? `translate(${x}px, ${y}px) scale(${this.zoom})` : "";
    this.stage.dataset.zoom = String(this.zoom);
  }

  startPan(event) {
    if (this.zoom <= 1) return;
    event.preventDefault();
    const start = { x: event.clientX - this.pan.x, y: event.clientY - this.pan.y };
    const box = this.layers.getBoundingClientRect();
    // The zoomed image may move until its edge reaches the stage's middle, no further.
    const limit = { x: (box.width / this.zoom) * (this.zoom - 1) / 2, y: (box.height / this.zoom) * (this.zoom - 1) / 2 };
    const move = (e) => {
      this.pan.x = Math.max(-limit.x, Math.min(limit.x, e.clientX - start.x));
      this.pan.y = Math.max(-limit.y, Math.min(limit.y, e.clientY - start.y));
      this.applyTransform();
    };
    const stop = () => {
      this.stage.removeEventListener("pointermove", move);
      this.stage.removeEventListener("pointerup", stop);
      this.stage.removeEventListener("pointercancel", stop);
    };
    this.stage.setPointerCapture(event.pointerId);
    this.stage.addEventListener("pointermove", move);
    this.stage.addEventListener("pointerup", stop);
    this.stage.addEventListener("pointercancel", stop);
  }

  clear() {
    this.geometry = null;
    for (const canvas of [this.result, this.before]) {
      canvas.width = 0;
      canvas.height = 0;
    }
    this.setZoom(1);
  }
}
