// The tryit worker: loads Pyodide, the pinned wheels and snippets/ from the
// site itself, then runs a page's examples (runtime.py) off the page's
// thread, posting output as it is written. See docs/_ext/tryit.py.

let pyodide = null;
let runFn = null;
let stopRequested = false;
let resumeNext = null;
const queue = [];
let busy = false;

self.tryitPost = (kind, json) => self.postMessage({ kind, ...JSON.parse(json) });
self.tryitStopRequested = () => stopRequested;
self.tryitWaitForNext = () =>
  new Promise((resolve) => {
    resumeNext = resolve;
  });

async function fetchBytes(url, options = {}) {
  const response = await fetch(url, options);
  if (!response.ok) throw new Error(`${url}: HTTP ${response.status}`);
  return new Uint8Array(await response.arrayBuffer());
}

async function init(config) {
  const base = new URL(config.base);
  const started = performance.now();
  const indexURL = new URL(config.pyodide, base).href;
  const { loadPyodide } = await import(new URL("pyodide.mjs", indexURL).href);
  self.postMessage({ kind: "status", text: "Loading Python…" });
  const [py, wheels, snippets, runtime] = await Promise.all([
    loadPyodide({ indexURL }),
    Promise.all(config.wheels.map((w) => fetchBytes(new URL(w, base)))),
    // snippets.zip keeps its name from build to build: ask past the cache.
    fetchBytes(new URL(config.snippets, base), { cache: "no-cache" }),
    fetch(new URL("runtime.py", base)).then((r) => r.text()),
  ]);
  pyodide = py;
  self.postMessage({ kind: "status", text: "Installing Flask…" });
  const site = pyodide.runPython("import site; site.getsitepackages()[0]");
  config.wheels.forEach((name, i) => {
    const format = name.endsWith(".whl") ? "wheel" : "zip";
    pyodide.unpackArchive(wheels[i], format, { extractDir: site });
  });
  pyodide.FS.mkdirTree("/home/pyodide/site");
  pyodide.unpackArchive(snippets, "zip", { extractDir: "/home/pyodide/site" });
  pyodide.runPython(
    "import sys, os; sys.path.insert(0, '/home/pyodide/site'); os.chdir('/home/pyodide/site')",
  );
  pyodide.runPython(runtime, { filename: "runtime.py" });
  runFn = pyodide.globals.get("run");
  // JavaScript Promise Integration lets Python wait for the page (Stop, Next).
  const jspi = typeof WebAssembly.Suspending === "function" && typeof runFn.callPromising === "function";
  self.postMessage({ kind: "loaded", jspi, ms: Math.round(performance.now() - started) });
}

async function run(message) {
  stopRequested = false;
  const args = [JSON.stringify(message.steps), message.upto, message.fresh, message.pause];
  try {
    if (typeof runFn.callPromising === "function") await runFn.callPromising(...args);
    else runFn(...args);
  } catch (error) {
    self.postMessage({ kind: "error", text: String(error) });
  }
  self.postMessage({ kind: "idle" });
}

async function drain() {
  if (busy) return;
  busy = true;
  while (queue.length) {
    const message = queue.shift();
    try {
      if (message.kind === "init") await init(message.config);
      else if (message.kind === "run") await run(message);
    } catch (error) {
      self.postMessage({ kind: "error", text: String(error) });
    }
  }
  busy = false;
}

self.onmessage = (event) => {
  const message = event.data;
  if (message.kind === "stop") {
    stopRequested = true;
    if (resumeNext) resumeNext();
    resumeNext = null;
  } else if (message.kind === "next") {
    if (resumeNext) resumeNext();
    resumeNext = null;
  } else {
    queue.push(message);
    drain();
  }
};
