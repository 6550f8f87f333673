// A "Run" button on each runnable >>> block (docs/_ext/tryit.py says which).
// Nothing is downloaded before the first click; then one worker per page
// holds Python (Pyodide) and the page's namespace.

const programElement = document.getElementById("tryit-program");
const program = JSON.parse(programElement.textContent);
const base = new URL("./", import.meta.url).href;
const blocks = Array.from(document.querySelectorAll(".tryit-block"));
const stepOf = []; // block index -> step index
program.steps.forEach((step, i) => {
  if (step.kind === "doctest" && step.block !== null) stepOf[step.block] = i;
});

let worker = null;
let loading = null;
let jspi = false;
let ranThrough = -1; // the last step run in the worker's namespace
let editedSince = Infinity; // the first step edited after it ran
let current = null; // the widget whose block is running

const widgets = blocks.map((box, index) => makeWidget(box, index));

function el(tag, attrs = {}, text = "") {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) node.setAttribute(key, value);
  if (text) node.textContent = text;
  return node;
}

function makeWidget(box, index) {
  const original = program.steps[stepOf[index]].text;
  const bar = el("div", { class: "tryit-bar", role: "group", "aria-label": `Example ${index + 1}` });
  const run = el("button", { type: "button", class: "tryit-run" });
  const edit = el("button", { type: "button", class: "tryit-edit", "aria-pressed": "false" }, "Edit");
  const stop = el("button", { type: "button", class: "tryit-stop", hidden: "" }, "Stop");
  const next = el("button", { type: "button", class: "tryit-next", hidden: "" }, "Next chunk");
  const pauseId = `tryit-pause-${index}`;
  const pause = el("input", { type: "checkbox", id: pauseId, class: "tryit-pause" });
  const pauseLabel = el("label", { for: pauseId }, "Pause at each chunk");
  const pauseBox = el("span", { class: "tryit-pause-box" });
  pauseBox.append(pause, pauseLabel);
  bar.append(run, edit, stop, next, pauseBox);
  const editorId = `tryit-editor-${index}`;
  const editor = el("textarea", {
    id: editorId,
    class: "tryit-editor",
    hidden: "",
    spellcheck: "false",
    "aria-label": `Edit example ${index + 1}, then press Run`,
  });
  editor.value = original;
  editor.rows = Math.min(30, original.split("\n").length + 1);
  const output = el("div", { class: "tryit-output", hidden: "" });
  const status = el("p", { class: "tryit-status", role: "status" });
  const chunks = el("ol", { class: "tryit-chunks", "aria-label": "Chunks of the streamed body, as they arrived" });
  const live = el("pre", { class: "tryit-live", tabindex: "0" });
  const results = el("div", { class: "tryit-results" });
  output.append(status, chunks, live, results);
  box.after(bar, editor, output);
  const widget = { index, box, run, edit, stop, next, pause, editor, output, status, chunks, live, results, original };
  setRunLabel(widget);
  run.addEventListener("click", () => start(widget));
  edit.addEventListener("click", () => toggleEdit(widget));
  stop.addEventListener("click", () => stopRun(widget));
  next.addEventListener("click", () => {
    next.hidden = true;
    worker.postMessage({ kind: "next" });
  });
  editor.addEventListener("input", () => {
    editedSince = Math.min(editedSince, stepOf[index]);
  });
  return widget;
}

function setRunLabel(widget) {
  widget.run.textContent = worker ? "Run" : `Run (downloads ${program.megabytes} MB once)`;
}

function toggleEdit(widget) {
  const editing = widget.editor.hidden;
  widget.editor.hidden = !editing;
  widget.box.hidden = editing;
  widget.edit.setAttribute("aria-pressed", String(editing));
  if (editing) widget.editor.focus();
}

function textOf(step, i) {
  if (step.kind !== "doctest" || step.block === null) return step;
  const widget = widgets[step.block];
  return { ...step, text: widget.editor.hidden ? widget.original : widget.editor.value };
}

function ensureWorker() {
  if (loading) return loading;
  worker = new Worker(new URL("tryit-worker.mjs", base), { type: "module" });
  widgets.forEach(setRunLabel);
  loading = new Promise((resolve, reject) => {
    worker.onmessage = (event) => {
      const message = event.data;
      if (message.kind === "loaded") {
        document.documentElement.dataset.tryitLoadMs = String(message.ms);
        jspi = message.jspi;
        if (!jspi) widgets.forEach((w) => (w.pause.disabled = true));
        resolve();
      } else if (message.kind === "ready") return;
      else if (message.kind === "error" && !current) reject(new Error(message.text));
      else onMessage(message);
    };
    worker.onerror = (event) => reject(new Error(event.message || "the worker failed"));
  });
  worker.postMessage({ kind: "init", config: { ...program, steps: undefined, base } });
  return loading;
}

function onMessage(message) {
  const widget = current;
  if (!widget) return;
  if (message.kind === "status") widget.status.textContent = message.text;
  else if (message.kind === "out") widget.live.textContent += message.text;
  else if (message.kind === "chunk") {
    const item = el("li", { "data-response": String(message.response) }, message.text);
    widget.chunks.append(item);
    widget.chunks.hidden = false;
  } else if (message.kind === "more") {
    widget.chunks.dataset.more = String(message.n);
  } else if (message.kind === "paused") {
    widget.status.textContent = `Paused after chunk ${message.n}: press Next chunk or Stop.`;
    widget.next.hidden = false;
  } else if (message.kind === "resumed") {
    widget.status.textContent = "Running…";
  } else if (message.kind === "done") showResults(widget, message);
  else if (message.kind === "error") widget.status.textContent = message.text;
  else if (message.kind === "idle") finish(widget);
}

function showResults(widget, message) {
  widget.output.tryitResults = message.results;
  widget.live.hidden = true;
  widget.results.replaceChildren();
  let differ = 0;
  message.results.forEach((r, i) => {
    const item = el("div", { class: "tryit-example", "data-ok": String(r.ok), "data-index": String(i) });
    const prompt = r.source.replace(/\n$/, "").split("\n").map((line, j) => (j ? "... " : ">>> ") + line).join("\n");
    item.append(el("pre", { class: "tryit-source", tabindex: "0" }, prompt));
    if (r.got) item.append(el("pre", { class: "tryit-got", tabindex: "0" }, r.got));
    if (r.exc) {
      const exc = el("pre", { class: "tryit-exc", tabindex: "0" }, `Traceback (most recent call last):\n  ...\n${r.exc}`);
      exc.dataset.exc = r.exc;
      item.append(exc);
    }
    if (r.documented && r.ok) {
      item.append(el("p", { class: "tryit-documented" }, "As the note under the example says, Python in your browser prints this differently."));
    }
    if (!r.ok && !r.stopped) {
      differ += 1;
      item.append(el("p", { class: "tryit-differs" }, "This differs from the output the page shows."));
    }
    widget.results.append(item);
  });
  const more = widget.chunks.dataset.more ? ` (${widget.chunks.dataset.more} chunks in all, the first 200 listed)` : "";
  const stopped = message.results.some((r) => r.stopped);
  widget.status.textContent = stopped
    ? "Stopped: the response was closed."
    : differ
      ? `Ran: ${differ} of ${message.results.length} examples differ from the page.${more}`
      : `Ran: the output matches the page.${more}`;
  if (message.earlier) widget.status.textContent += ` (${message.earlier} examples above differed.)`;
  widget.output.dataset.state = stopped ? "stopped" : "done";
}

function finish(widget) {
  widget.stop.hidden = true;
  widget.next.hidden = true;
  widgets.forEach((w) => (w.run.disabled = false));
  current = null;
  if (widget.output.dataset.state === "running") widget.output.dataset.state = "failed";
}

async function start(widget) {
  if (current) return;
  current = widget;
  widgets.forEach((w) => (w.run.disabled = true));
  widget.output.hidden = false;
  widget.output.dataset.state = "loading";
  widget.chunks.replaceChildren();
  widget.chunks.hidden = true;
  delete widget.chunks.dataset.more;
  widget.live.textContent = "";
  widget.live.hidden = false;
  widget.results.replaceChildren();
  widget.status.textContent = worker ? "Running…" : `Downloading Python (${program.megabytes} MB, once)…`;
  try {
    await ensureWorker();
  } catch (error) {
    widget.status.textContent = `Python could not start: ${error.message}`;
    widget.output.dataset.state = "failed";
    worker = null;
    loading = null;
    finish(widget);
    widgets.forEach(setRunLabel);
    return;
  }
  const upto = stepOf[widget.index];
  const fresh = upto <= ranThrough || editedSince <= ranThrough;
  const steps = program.steps.slice(0, upto + 1).map(textOf);
  const from = fresh ? 0 : ranThrough + 1;
  // Steps already run stay as they are: the worker runs from `from` on.
  const todo = steps.map((step, i) => (i < from ? { kind: "clear-skip" } : step));
  ranThrough = upto;
  editedSince = Infinity;
  widget.output.dataset.state = "running";
  widget.status.textContent = "Running…";
  widget.stop.hidden = false;
  worker.postMessage({ kind: "run", steps: todo, upto, fresh, pause: widget.pause.checked });
}

function stopRun(widget) {
  if (jspi) {
    worker.postMessage({ kind: "stop" });
    widget.status.textContent = "Stopping…";
    return;
  }
  // Without JavaScript Promise Integration Python cannot be asked to stop:
  // the worker ends, and the next Run starts Python again.
  worker.terminate();
  worker = null;
  loading = null;
  ranThrough = -1;
  widget.status.textContent =
    "Stopped: this browser cannot pause Python, so Python was restarted (no clean-up output).";
  widget.output.dataset.state = "stopped";
  finish(widget);
  widgets.forEach(setRunLabel);
}

export { widgets };
