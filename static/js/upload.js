/**
 * The upload page (templates/removal/_uploader.html): drop, paste or pick images; each is
 * uploaded once (and charged once), its cut-out shown beside the original; changing an
 * option re-renders from what the server kept, for free; downloads are free.
 *
 * When the options leave the cut-out as it is (no background colour, no crop, margin or
 * target size, not JPEG) and the browser decodes the original as the server does, the page
 * asks for a Delta PNG and rebuilds the cut-out here with delta-png.js: the download is
 * small and the full-size PNG is encoded in the browser.
 *
 * The viewer (static/js/viewer.js) shows the original left of a split and the cut-out right
 * of it, fitted to the viewport, with zoom. The page brings the progress, then the first
 * result of a drop into view. A refused option is marked on its field and the result shown
 * is marked out of date until a render with the current options arrives.
 *
 * On the home page a visitor gets the same page in try-out mode (data-mode="tryout"): one
 * photo, test mode only, then a prompt to sign up (removal/tryouts.py).
 *
 * Everything the script needs from the server arrives in the #uploader element's data-*.
 */

const RETRIES_429 = 3; // a batch backs off and retries when the server says "too many"
const ACCEPTED_TEXT = "JPEG, PNG, WebP, GIF, BMP, TIFF or HEIC";
const SERVER_FORMATS = new Set(["jpeg", "png", "webp", "gif", "bmp", "tiff", "heic"]);
const BROWSER_SHOWS = new Set(["jpeg", "png", "webp", "gif", "bmp"]);
const NOTHING_CHARGED = "Nothing was charged.";
const MIB = 1048576; // "MB" on this page is 1,048,576 bytes, as in the server's limits
const TRYOUT_LIMIT_CODE = 4060;
// Option error codes (removal/errors.py) → the field that holds the option.
const OPTION_FIELDS = {
  2003: "opt-background",
  2005: "opt-margin",
  2006: "opt-target-width",
  2007: "opt-align",
  2008: "opt-format",
  2009: "opt-quality",
};

const root = document.getElementById("uploader");
if (root) {
  const { Viewer, parseBox, parseSize } = await import(root.dataset.viewerUrl);
  initUploader(root, { Viewer, parseBox, parseSize });
}

/** A message as a sentence: the server's text ends with a full stop. */
function sentence(text) {
  const trimmed = String(text || "").trim();
  return /[.!?]$/.test(trimmed) ? trimmed : `${trimmed}.`;
}

class ServerError extends Error {
  constructor(status, code, message, retryAfter) {
    super(message);
    this.status = status;
    this.code = code;
    this.retryAfter = retryAfter;
  }
}

class NetworkError extends Error {}

function initUploader(root, { Viewer, parseBox, parseSize }) {
  const $ = (id) => document.getElementById(id);
  const el = {
    dropzone: $("dropzone"),
    fileInput: $("file-input"),
    alerts: $("alerts"),
    options: $("options"),
    balance: $("credit-balance"),
    progressArea: $("progress-area"),
    progress: $("progress"),
    progressLabel: $("progress-label"),
    viewer: $("viewer"),
    original: $("original"),
    originalMissing: $("original-missing"),
    failure: $("result-failure"),
    resultStatus: $("result-status"),
    layers: $("layers"),
    staleNote: $("stale-note"),
    info: $("result-info"),
    download: $("download"),
    batchArea: $("batch-area"),
    batch: $("batch"),
    downloadZip: $("download-zip"),
  };
  const config = {
    tryout: root.dataset.mode === "tryout",
    createUrl: root.dataset.createUrl,
    renderUrl: (id) => root.dataset.renderUrl.replace("UPLOAD_ID", encodeURIComponent(id)),
    originalUrl: (id) => root.dataset.originalUrl.replace("UPLOAD_ID", encodeURIComponent(id)),
    pricingUrl: root.dataset.pricingUrl,
    signupUrl: root.dataset.signupUrl,
    maxBytes: Number(root.dataset.maxUploadBytes),
    maxMb: root.dataset.maxUploadMb,
    csrf: root.querySelector("input[name=csrfmiddlewaretoken]").value,
  };
  const viewer = new Viewer(el.viewer);
  // Uploads or renders at a time (read on each start, so it can be changed on the page).
  const parallel = () => Math.max(1, Number(root.dataset.parallel) || 1);
  // Loaded through its (hashed) static URL, so that caching follows Django's manifest.
  const deltaModule = import(root.dataset.deltaPngUrl);

  const items = [];
  let selected = null;
  let optionsVersion = 0;
  let shown = 0; // results shown so far, in data-shown: tests wait for the next one

  // --- the work queue: bounded parallelism for uploads and re-renders ---------------------
  const queue = [];
  let running = 0;
  function enqueue(task) {
    return new Promise((resolve, reject) => {
      queue.push({ task, resolve, reject });
      pump();
    });
  }
  function pump() {
    while (running < parallel() && queue.length) {
      const { task, resolve, reject } = queue.shift();
      running++;
      task()
        .then(resolve, reject)
        .finally(() => {
          running--;
          pump();
        });
    }
  }

  // --- messages ---------------------------------------------------------------------------
  function alertUser(message, { link = null } = {}) {
    const box = document.createElement("div");
    box.className = "alert";
    const text = document.createElement("p");
    text.style.margin = "0";
    text.textContent = message + " ";
    if (link) {
      const a = document.createElement("a");
      a.href = link.href;
      a.textContent = link.text;
      text.append(a);
    }
    const close = document.createElement("button");
    close.type = "button";
    close.setAttribute("aria-label", "Dismiss this message");
    close.textContent = "×";
    close.addEventListener("click", () => box.remove());
    box.append(text, close);
    el.alerts.append(box);
    while (el.alerts.children.length > 5) el.alerts.firstElementChild.remove();
  }

  function describeError(error, name) {
    if (error instanceof NetworkError) {
      return [`Network error while sending ${name}: check your connection and try again. ${NOTHING_CHARGED}`];
    }
    if (!(error instanceof ServerError)) {
      return [`${name}: ${sentence(error.message)} ${NOTHING_CHARGED}`];
    }
    if (error.code === TRYOUT_LIMIT_CODE) {
      return [`${sentence(error.message)} ${NOTHING_CHARGED}`, { link: { href: config.signupUrl, text: "Sign up" } }];
    }
    if (error.status === 402) {
      return [
        `${name}: ${error.message} Turn on test mode (free, with a watermark) or buy credits. ${NOTHING_CHARGED}`,
        { link: { href: config.pricingUrl, text: "Buy credits" } },
      ];
    }
    if (error.status === 429) {
      const wait = error.retryAfter ? ` in ${error.retryAfter} s` : " in a moment";
      return [`${name}: too many requests at once; try again${wait}. ${NOTHING_CHARGED}`];
    }
    if (error.status === 413) {
      return [`${name} is larger than the ${config.maxMb} MB upload limit. ${NOTHING_CHARGED}`];
    }
    if (error.status >= 500) {
      return [`${name}: something went wrong on our side (error ${error.code}). ${NOTHING_CHARGED} Please try again.`];
    }
    return [`${name}: ${sentence(error.message)} ${NOTHING_CHARGED}`];
  }

  // --- a refused option: marked on its field, and the shown result marked out of date ----
  function markField(error) {
    const id = OPTION_FIELDS[error.code];
    if (!id) return false;
    const input = $(id);
    const box = input.closest(".option");
    input.setAttribute("aria-invalid", "true");
    let note = box.querySelector(".field-error");
    if (!note) {
      note = document.createElement("small");
      note.className = "field-error";
      note.id = `${id}-error`;
      box.append(note);
      const described = input.getAttribute("aria-describedby");
      input.setAttribute("aria-describedby", described ? `${described} ${note.id}` : note.id);
    }
    note.textContent = sentence(error.message);
    setStale(true);
    return true;
  }

  function clearField(input) {
    const box = input.closest(".option");
    if (!box) return;
    for (const field of box.querySelectorAll("[aria-invalid]")) field.removeAttribute("aria-invalid");
    const note = box.querySelector(".field-error");
    if (note) note.remove();
  }

  function setStale(stale) {
    el.viewer.classList.toggle("stale", stale);
    el.viewer.dataset.stale = String(stale);
    el.staleNote.hidden = !stale;
  }

  // --- options ----------------------------------------------------------------------------
  function readOptions() {
    const f = el.options.elements;
    const fields = [["test", f["test"].checked ? "true" : "false"]];
    const background = f["use_background"].checked;
    f["background.color"].disabled = !background;
    if (background) fields.push(["background.color", f["background.color"].value]);
    const crop = f["result.crop_to_foreground"].checked;
    if (crop) fields.push(["result.crop_to_foreground", "true"]);
    const margin = f["result.margin"].value.trim();
    if (margin) fields.push(["result.margin", margin]);
    const width = f["target_width"].value.trim();
    const height = f["target_height"].value.trim();
    const sized = width !== "" && height !== ""; // half a size is no size yet
    if (sized) fields.push(["result.target_size", `${width} ${height}`]);
    fields.push(["result.vertical_alignment", f["result.vertical_alignment"].value]);
    const format = f["output.format"].value;
    const quality = f["output.jpeg_quality"].value.trim();
    if (quality) fields.push(["output.jpeg_quality", quality]);
    // Only an untouched cut-out can be rebuilt from a delta; anything else is the server's.
    const deltaAllowed = !background && !crop && !margin && !sized && format !== "jpeg";
    return { fields, format, deltaAllowed, test: f["test"].checked };
  }

  // --- HTTP: XMLHttpRequest, because fetch() reports no upload progress ----------------
  function post(url, form, onProgress) {
    return new Promise((resolve, reject) => {
      const xhr = new XMLHttpRequest();
      xhr.open("POST", url);
      xhr.responseType = "arraybuffer";
      xhr.setRequestHeader("X-CSRFToken", config.csrf);
      if (onProgress) xhr.upload.addEventListener("progress", (e) => e.lengthComputable && onProgress(e.loaded / e.total));
      xhr.addEventListener("load", () => resolve(xhr));
      xhr.addEventListener("error", () => reject(new NetworkError("network error")));
      xhr.addEventListener("abort", () => reject(new NetworkError("aborted")));
      xhr.send(form);
    });
  }

  function failure(xhr) {
    let code = 0;
    let message = `The server answered ${xhr.status}.`;
    try {
      const body = JSON.parse(new TextDecoder().decode(xhr.response));
      code = body.error.code;
      message = body.error.message;
    } catch {
      // Not our JSON (a proxy's page, say): keep the generic message.
    }
    const retryAfter = Number(xhr.getResponseHeader("Retry-After")) || 0;
    return new ServerError(xhr.status, code, message, retryAfter);
  }

  async function request(url, form, onProgress) {
    for (let attempt = 0; ; attempt++) {
      const xhr = await post(url, form, onProgress);
      if (xhr.status === 200) return xhr;
      const error = failure(xhr);
      if (error.status !== 429 || attempt >= RETRIES_429 || error.retryAfter > 10) throw error;
      await new Promise((r) => setTimeout(r, 1000 * Math.max(1, error.retryAfter)));
    }
  }

  // --- files in ---------------------------------------------------------------------------
  async function addFiles(fileList) {
    const start = performance.now(); // "drop to preview" is measured from here
    const files = config.tryout ? [...fileList].slice(0, 1) : [...fileList];
    if (!files.length) return;
    const { sniffImage } = await deltaModule;
    const batch = !config.tryout && items.length + files.length > 1;
    let first = true;
    for (const file of files) {
      const name = file.name || "pasted image";
      if (file.size === 0) {
        alertUser(`${name} is empty. ${NOTHING_CHARGED}`);
        continue;
      }
      if (file.size > config.maxBytes) {
        const mb = (file.size / MIB).toFixed(1);
        alertUser(`${name} is ${mb} MB; the limit is ${config.maxMb} MB per image. ${NOTHING_CHARGED}`);
        continue;
      }
      const sniff = sniffImage(new Uint8Array(await file.arrayBuffer()));
      if (!SERVER_FORMATS.has(sniff.format)) {
        alertUser(`${name} is not an image we can read: use ${ACCEPTED_TEXT}. ${NOTHING_CHARGED}`);
        continue;
      }
      const item = {
        key: crypto.randomUUID(),
        file,
        name,
        sniff,
        start,
        originalUrl: BROWSER_SHOWS.has(sniff.format) ? URL.createObjectURL(file) : null,
        pixels: null,
        uploadId: null,
        state: "waiting",
        result: null,
        version: 0,
        info: {},
      };
      if (config.tryout) items.length = 0; // a visitor sees one photo at a time
      items.push(item);
      if (!config.tryout) addToBatchList(item);
      if (first) {
        item.reveal = true; // bring its progress, then its result, into view
        select(item); // a new drop is what the user wants to see
      }
      first = false;
      enqueue(() => upload(item)).catch(() => {});
    }
    el.batchArea.hidden = config.tryout || (!batch && items.length < 2);
    updateProgress();
    if (items.some((i) => i.reveal)) el.progressArea.scrollIntoView({ block: "center" });
  }

  // Try-outs adopted at sign-up (ids) and an upload opened from the history ({id, name}):
  // already on the server, shown with the current options.
  function addAdopted(entries) {
    for (const entry of entries) {
      const id = typeof entry === "string" ? entry : entry.id;
      const item = {
        key: id,
        name: typeof entry === "string" ? "Your try-out" : entry.name,
        sniff: { format: "stored", rebuildable: false },
        start: performance.now(),
        originalUrl: config.originalUrl(id),
        uploadId: id,
        state: "waiting",
        result: null,
        version: 0,
        info: {},
        reveal: true,
      };
      items.push(item);
      addToBatchList(item);
      select(item);
      enqueue(() => render(item)).catch(() => {});
    }
    updateProgress();
  }

  function originalPixels(item) {
    if (!item.pixels) {
      item.pixels = deltaModule
        .then((m) => m.loadImagePixels(item.file))
        .catch(() => null); // the browser cannot decode it: fall back to the server's PNG
    }
    return item.pixels;
  }

  async function upload(item) {
    const options = readOptions();
    const useDelta = options.deltaAllowed && item.sniff.rebuildable;
    if (useDelta) originalPixels(item); // decode while the upload runs
    const form = new FormData();
    form.append("image", item.file, item.name);
    form.append("key", item.key);
    for (const [name, value] of options.fields) form.append(name, value);
    form.append("output.format", useDelta ? "delta_png" : options.format);
    setState(item, "uploading");
    const version = optionsVersion;
    item.marks = { queued: performance.now() - item.start };
    try {
      const xhr = await request(config.createUrl, form, (fraction) => {
        item.uploaded = fraction;
        if (fraction >= 1) {
          item.marks.sent = performance.now() - item.start;
          setState(item, "processing");
        }
        updateProgress();
      });
      item.marks.answered = performance.now() - item.start;
      item.uploadId = xhr.getResponseHeader("X-Upload-Id");
      // The browser cannot show this original: the server made a preview of it.
      if (!item.originalUrl) item.originalUrl = config.originalUrl(item.uploadId);
      readCharge(item, xhr, options);
      await show(item, xhr, useDelta);
      // Options changed while this one was in flight: bring it up to date (free).
      if (version !== optionsVersion) await render(item);
    } catch (error) {
      item.error = describeError(error, item.name)[0];
      setState(item, "failed");
      if (!markField(error) && item === selected) showSelected();
      alertUser(...describeError(error, item.name));
      throw error;
    }
  }

  async function render(item) {
    const options = readOptions();
    const version = optionsVersion;
    const useDelta = options.deltaAllowed && item.sniff.rebuildable && item.pixelsUsable !== false;
    if (useDelta) originalPixels(item);
    const form = new FormData();
    for (const [name, value] of options.fields) form.append(name, value);
    form.append("output.format", useDelta ? "delta_png" : options.format);
    setState(item, "updating");
    try {
      const xhr = await request(config.renderUrl(item.uploadId), form);
      if (version !== optionsVersion) return; // a newer render is queued
      readCharge(item, xhr, options);
      await show(item, xhr, useDelta);
    } catch (error) {
      // Leaving test mode without credits: the page goes back to what it still shows.
      if (error.status === 402 && item.info.test) {
        el.options.elements["test"].checked = true;
        setStale(false);
      }
      setState(item, item.result ? "done" : "failed");
      markField(error);
      alertUser(...describeError(error, item.name));
    }
  }

  function readCharge(item, xhr, options) {
    const balance = xhr.getResponseHeader("X-Credits-Balance");
    if (balance !== null && el.balance) el.balance.textContent = balance;
    const charged = xhr.getResponseHeader("X-Credits-Charged");
    if (charged !== null && Number(charged) > 0) item.info.charged = (Number(item.info.charged) || 0) + Number(charged);
    item.info.test = options.test;
    item.info.inputSize = xhr.getResponseHeader("X-Input-Size");
    item.info.resultSize = xhr.getResponseHeader("X-Result-Size");
    item.info.geometry = {
      inputSize: parseSize(item.info.inputSize),
      resultSize: parseSize(item.info.resultSize),
      inputForeground: parseBox(xhr.getResponseHeader("X-Input-Foreground")),
      resultForeground: parseBox(xhr.getResponseHeader("X-Result-Foreground")),
    };
  }

  async function show(item, xhr, usedDelta) {
    const type = (xhr.getResponseHeader("Content-Type") || "image/png").split(";")[0];
    if (usedDelta) {
      const m = await deltaModule;
      const pixels = await originalPixels(item);
      let image = null;
      if (pixels) {
        try {
          image = m.rebuildCutout(pixels, await m.decodePng(xhr.response));
        } catch {
          image = null; // a size mismatch or a broken delta: ask for the server's PNG instead
        }
      }
      if (!image) {
        item.pixelsUsable = false;
        await render(item);
        return;
      }
      release(item);
      const shownPixels = new ImageData(image.data, image.width, image.height);
      item.result = { kind: "delta", image, pixels: shownPixels, type: "image/png", width: image.width, height: image.height };
      // Encode the download in the background, so that the preview is not kept waiting.
      const result = item.result;
      result.png = new Promise((r) => setTimeout(r, 0)).then(() => m.encodePng(image));
      result.png.then(
        (png) => {
          if (item.result !== result) return;
          result.url = URL.createObjectURL(new Blob([png], { type: "image/png" }));
          updateThumb(item); // the batch list shows the cut-out once it is encoded
        },
        () => {},
      );
    } else {
      release(item);
      const blob = new Blob([xhr.response], { type });
      const [width, height] = item.info.geometry.resultSize;
      const pixels = await createImageBitmap(blob);
      item.result = { kind: "server", blob, pixels, url: URL.createObjectURL(blob), type, width, height };
    }
    item.result.geometry = item.info.geometry;
    setState(item, "done");
    root.dataset.shown = String(++shown);
    if (item.previewMs === undefined) {
      item.previewMs = Math.round(performance.now() - item.start);
      root.dataset.lastPreviewMs = String(item.previewMs);
      // Where the time went (ms since the drop), for anyone measuring the page.
      const marks = { ...item.marks, shown: item.previewMs };
      root.dataset.lastPreviewMarks = JSON.stringify(marks, (k, v) => (typeof v === "number" ? Math.round(v) : v));
    }
    updateThumb(item);
    if (item === selected) {
      setStale(false);
      showSelected();
      if (item.reveal) {
        item.reveal = false;
        el.viewer.scrollIntoView({ block: "start" });
      }
    }
  }

  function release(item) {
    if (item.result && item.result.url) URL.revokeObjectURL(item.result.url);
  }

  // --- the viewer -------------------------------------------------------------------------
  function select(item) {
    selected = item;
    for (const button of el.batch.querySelectorAll("button")) {
      button.setAttribute("aria-current", String(button.dataset.key === item.key));
    }
    showSelected();
  }

  function showSelected() {
    const item = selected;
    el.viewer.hidden = false;
    viewer.setOriginal(item.originalUrl);
    el.originalMissing.hidden = Boolean(item.originalUrl) || item.state === "failed";
    const result = item.result;
    el.layers.hidden = !result;
    el.failure.hidden = result || item.state !== "failed";
    el.failure.textContent = item.state === "failed" ? item.error || "" : "";
    // Display only: the download is encoded from the exact pixels, never from this canvas.
    if (result) viewer.showResult(result.pixels, result.geometry);
    else viewer.clear();
    el.download.disabled = !result;
    el.viewer.classList.toggle("busy", item.state !== "done" && item.state !== "failed");
    el.resultStatus.textContent = stateText(item.state);
    el.info.textContent = result ? resultInfo(item) : "";
    el.viewer.dataset.state = item.state;
    el.viewer.dataset.kind = result ? result.kind : "";
  }

  function resultInfo(item) {
    const r = item.result;
    const parts = [`${r.width} × ${r.height} px ${r.type === "image/jpeg" ? "JPEG" : "PNG"}`];
    if (item.info.test) parts.push("test mode: free, watermarked");
    else if (item.info.charged) parts.push(`${item.info.charged} credit${item.info.charged === 1 ? "" : "s"} charged`);
    if (r.kind === "delta") parts.push("rebuilt in your browser");
    return parts.join(" · ");
  }

  function stateText(state) {
    return {
      waiting: "waiting…",
      uploading: "uploading…",
      processing: "removing the background…",
      updating: "updating…",
      done: "",
      failed: "failed",
    }[state];
  }

  function setState(item, state) {
    item.state = state;
    updateThumb(item);
    updateProgress();
    if (item === selected) {
      el.resultStatus.textContent = stateText(state);
      el.viewer.classList.toggle("busy", state !== "done" && state !== "failed");
      el.viewer.dataset.state = state;
    }
  }

  function updateProgress() {
    const active = items.filter((i) => i.state !== "done" && i.state !== "failed");
    el.progressArea.hidden = active.length === 0;
    if (!active.length) return;
    const weight = { waiting: 0, uploading: 0.5, processing: 0.6, updating: 0.6, done: 1, failed: 1 };
    const done = items.reduce((sum, i) => sum + (i.state === "uploading" ? 0.5 * (i.uploaded || 0) : weight[i.state]), 0);
    el.progress.value = Math.round((100 * done) / items.length);
    const finished = items.length - active.length;
    const verb = active.some((i) => i.state === "uploading") ? "Uploading" : active.some((i) => i.state === "updating") ? "Updating" : "Removing backgrounds";
    el.progressLabel.textContent = items.length > 1 ? `${verb}: ${finished} of ${items.length} done` : `${verb}…`;
  }

  // --- the batch list ---------------------------------------------------------------------
  function addToBatchList(item) {
    const li = document.createElement("li");
    const button = document.createElement("button");
    button.type = "button";
    button.dataset.key = item.key;
    button.setAttribute("aria-current", "false");
    button.innerHTML = '<span class="thumb checkerboard"></span><span class="name"></span><span class="state"></span>';
    button.querySelector(".name").textContent = item.name;
    button.addEventListener("click", () => select(item));
    li.append(button);
    el.batch.append(li);
    item.button = button;
    updateThumb(item);
  }

  function updateThumb(item) {
    el.downloadZip.disabled = !items.some((i) => i.result);
    if (!item.button) return;
    const state = item.button.querySelector(".state");
    state.textContent = item.state === "done" ? "done" : stateText(item.state);
    state.className = `state ${item.state}`;
    const thumb = item.button.querySelector(".thumb");
    const src = item.result && item.result.url ? item.result.url : item.originalUrl;
    if (src && (!thumb.firstChild || thumb.firstChild.src !== src)) {
      const img = document.createElement("img");
      img.alt = "";
      img.src = src;
      thumb.replaceChildren(img);
    }
  }

  // --- downloads --------------------------------------------------------------------------
  async function resultBlob(item) {
    const r = item.result;
    if (r.kind === "server") return r.blob;
    return new Blob([await r.png], { type: "image/png" });
  }

  function resultName(item, used = new Set()) {
    const base = item.name.replace(/\.[^.]*$/, "") || "image";
    const ext = item.result.type === "image/jpeg" ? "jpg" : "png";
    let name = `${base}-cutout.${ext}`;
    for (let n = 2; used.has(name); n++) name = `${base}-cutout-${n}.${ext}`;
    used.add(name);
    return name;
  }

  function save(blob, name) {
    const a = document.createElement("a");
    a.href = URL.createObjectURL(blob);
    a.download = name;
    document.body.append(a);
    a.click();
    a.remove();
    setTimeout(() => URL.revokeObjectURL(a.href), 60_000);
  }

  async function downloadSelected() {
    if (!selected || !selected.result) return;
    el.download.disabled = true;
    try {
      save(await resultBlob(selected), resultName(selected));
    } catch (error) {
      alertUser(`Could not prepare the download: ${error.message}`);
    } finally {
      el.download.disabled = false;
    }
  }

  async function downloadZip() {
    const ready = items.filter((i) => i.result);
    if (!ready.length) {
      alertUser("No results to download yet.");
      return;
    }
    el.downloadZip.disabled = true;
    try {
      const { crc32 } = await deltaModule;
      const used = new Set();
      const files = [];
      for (const item of ready) {
        const bytes = new Uint8Array(await (await resultBlob(item)).arrayBuffer());
        files.push({ name: resultName(item, used), bytes });
      }
      save(zipStore(files, crc32), "cutouts.zip");
    } finally {
      el.downloadZip.disabled = false;
    }
  }

  // --- events -----------------------------------------------------------------------------
  el.fileInput.addEventListener("change", () => {
    addFiles(el.fileInput.files);
    el.fileInput.value = "";
  });
  for (const type of ["dragenter", "dragover"]) {
    root.addEventListener(type, (event) => {
      event.preventDefault();
      el.dropzone.classList.add("dragging");
    });
  }
  root.addEventListener("dragleave", (event) => {
    if (!root.contains(event.relatedTarget)) el.dropzone.classList.remove("dragging");
  });
  root.addEventListener("drop", (event) => {
    event.preventDefault();
    el.dropzone.classList.remove("dragging");
    addFiles(event.dataTransfer.files);
  });
  document.addEventListener("paste", (event) => {
    const files = [...(event.clipboardData?.files || [])];
    if (files.length) {
      event.preventDefault();
      addFiles(files);
    }
  });
  let debounce = null;
  el.options.addEventListener("submit", (event) => event.preventDefault());
  el.options.addEventListener("change", (event) => {
    readOptions(); // keeps the colour input's enabled state in step
    clearField(event.target);
    if (items.some((i) => i.result)) setStale(true);
    clearTimeout(debounce);
    debounce = setTimeout(() => {
      optionsVersion++;
      for (const item of items) {
        if (item.uploadId) enqueue(() => render(item));
      }
    }, 250);
  });
  el.original.addEventListener("error", () => {
    // A file the browser cannot show (or a broken one): say so instead of a broken image.
    if (!el.original.getAttribute("src")) return;
    el.originalMissing.hidden = false;
  });
  el.download.addEventListener("click", downloadSelected);
  el.downloadZip.addEventListener("click", downloadZip);
  readOptions();
  addAdopted(JSON.parse($("adopted-uploads").textContent || "[]"));
  root.dataset.ready = "true";
}

/**
 * A ZIP archive of already-compressed files (PNG, JPEG), stored without recompression.
 * @param {{name: string, bytes: Uint8Array}[]} files
 * @param {(bytes: Uint8Array) => number} crc32
 * @returns {Blob} application/zip
 */
function zipStore(files, crc32) {
  const encoder = new TextEncoder();
  const now = new Date();
  const time = (now.getHours() << 11) | (now.getMinutes() << 5) | (now.getSeconds() >> 1);
  const date = ((now.getFullYear() - 1980) << 9) | ((now.getMonth() + 1) << 5) | now.getDate();
  const parts = [];
  const central = [];
  let offset = 0;
  for (const file of files) {
    const name = encoder.encode(file.name);
    const crc = crc32(file.bytes);
    const size = file.bytes.length;
    const local = new DataView(new ArrayBuffer(30));
    local.setUint32(0, 0x04034b50, true);
    local.setUint16(4, 20, true); // version needed
    local.setUint16(6, 0x0800, true); // UTF-8 names
    local.setUint16(8, 0, true); // stored
    local.setUint16(10, time, true);
    local.setUint16(12, date, true);
    local.setUint32(14, crc, true);
    local.setUint32(18, size, true);
    local.setUint32(22, size, true);
    local.setUint16(26, name.length, true);
    local.setUint16(28, 0, true);
    parts.push(local, name, file.bytes);
    const entry = new DataView(new ArrayBuffer(46));
    entry.setUint32(0, 0x02014b50, true);
    entry.setUint16(4, 20, true);
    entry.setUint16(6, 20, true);
    entry.setUint16(8, 0x0800, true);
    entry.setUint16(10, 0, true);
    entry.setUint16(12, time, true);
    entry.setUint16(14, date, true);
    entry.setUint32(16, crc, true);
    entry.setUint32(20, size, true);
    entry.setUint32(24, size, true);
    entry.setUint16(28, name.length, true);
    entry.setUint32(42, offset, true);
    central.push(entry, name);
    offset += 30 + name.length + size;
  }
  const centralSize = central.reduce((sum, part) => sum + part.byteLength, 0);
  const end = new DataView(new ArrayBuffer(22));
  end.setUint32(0, 0x06054b50, true);
  end.setUint16(8, files.length, true);
  end.setUint16(10, files.length, true);
  end.setUint32(12, centralSize, true);
  end.setUint32(16, offset, true);
  return new Blob([...parts, ...central, end], { type: "application/zip" });
}
