// Toolbar, legend, info line and progress bar (plain DOM, no framework).
import { PRESET_NAMES } from "./windowing";

function el<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  cls = "",
  parent?: HTMLElement,
  text?: string,
): HTMLElementTagNameMap[K] {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  if (text !== undefined) e.textContent = text;
  if (parent) parent.appendChild(e);
  return e;
}

function select(parent: HTMLElement, title: string, options: [string, string][]): HTMLSelectElement {
  const s = el("select", "", parent);
  s.title = title;
  for (const [v, t] of options) {
    const o = el("option", "", s, t);
    o.value = v;
  }
  return s;
}

export interface Controls {
  frameBox: HTMLLabelElement;
  frameName: HTMLSpanElement;
  frame: HTMLInputElement;
  frameText: HTMLSpanElement;
  toolbar: HTMLDivElement;
  title: HTMLSpanElement;
  presets: Record<string, HTMLButtonElement>;
  wl: HTMLSpanElement;
  layout: HTMLSelectElement;
  convention: HTMLSelectElement;
  overlay: HTMLSelectElement;
  opacity: HTMLInputElement;
  outline: HTMLInputElement;
  show3d: HTMLInputElement;
  ptext: HTMLSpanElement;
  body: HTMLDivElement;
  grid: HTMLDivElement;
  side: HTMLDivElement;
  legend: HTMLDivElement;
  measure: HTMLButtonElement;
  stats: HTMLTableElement;
  info: HTMLDivElement;
  progress: HTMLDivElement;
  bar: HTMLDivElement;
  edit: EditControls;
}

/** The annotation bar: tools, label picker, brush, undo / redo. */
export interface EditControls {
  bar: HTMLDivElement;
  tools: Record<string, HTMLButtonElement>;
  label: HTMLSelectElement;
  swatch: HTMLSpanElement;
  radius: HTMLInputElement;
  radiusText: HTMLSpanElement;
  sphere: HTMLInputElement;
  inWindow: HTMLInputElement;
  tolerance: HTMLInputElement;
  accept: HTMLButtonElement;
  reject: HTMLButtonElement;
  fill: HTMLButtonElement;
  interp: HTMLButtonElement;
  undo: HTMLButtonElement;
  redo: HTMLButtonElement;
  counts: HTMLSpanElement;
}

function check(parent: HTMLElement, text: string, title: string, key: string): HTMLInputElement {
  const l = el("label", "", parent);
  l.title = title;
  const c = el("input", "", l);
  c.type = "checkbox";
  c.dataset.option = key;
  l.appendChild(document.createTextNode(text));
  return c;
}

function buildEditBar(root: HTMLElement): EditControls {
  const bar = el("div", "mv-toolbar mv-editbar", root);
  const tg = el("div", "mv-group", bar);
  const tools: Record<string, HTMLButtonElement> = {};
  for (const [t, text, key] of [
    ["navigate", "navigate", "N"],
    ["paint", "paint", "B"],
    ["erase", "erase", "E"],
    ["grow", "grow", "G"],
    ["assist", "assist", "A"],
    ["ruler", "ruler", "M"],
  ]) {
    const b = el("button", "", tg, text);
    b.type = "button";
    b.dataset.tool = t;
    b.title = `${t} (${key})`;
    tools[t] = b;
  }
  const ll = el("label", "", bar, "label");
  const swatch = el("span", "mv-sw", ll);
  const label = el("select", "", ll);
  label.dataset.labelPicker = "";
  label.title = "label to paint (keys 1-9)";
  const rl = el("label", "", bar, "brush");
  rl.title = "brush radius in mm ([ and ])";
  const radius = el("input", "", rl);
  radius.type = "range";
  radius.min = "0";
  radius.max = "30";
  radius.step = "0.5";
  radius.style.width = "80px";
  radius.dataset.brush = "";
  const radiusText = el("span", "mv-wl", rl);
  const sphere = check(bar, "3D sphere", "paint a sphere instead of a disc (S)", "sphere");
  const inWindow = check(bar, "in window", "paint only where the image is inside the window (W)", "in-window");
  const gl = el("label", "", bar, "±");
  gl.title = "region grow: voxels within this many units (HU) of the clicked voxel";
  const tolerance = el("input", "", gl);
  tolerance.type = "number";
  tolerance.min = "0";
  tolerance.step = "10";
  tolerance.style.width = "56px";
  tolerance.dataset.tolerance = "";
  const ug = el("div", "mv-group", bar);
  const accept = el("button", "", ug, "accept");
  accept.type = "button";
  accept.dataset.action = "accept";
  accept.title = "accept the model's proposal (Enter)";
  const reject = el("button", "", ug, "reject");
  reject.type = "button";
  reject.dataset.action = "reject";
  reject.title = "reject the model's proposal (Escape)";
  const fill = el("button", "", ug, "fill holes");
  fill.type = "button";
  fill.dataset.action = "fill";
  fill.title = "fill holes of the label on this slice (F)";
  const interp = el("button", "", ug, "interpolate");
  interp.type = "button";
  interp.dataset.action = "interpolate";
  interp.title = "fill the slices between labelled slices of this plane (I)";
  const undo = el("button", "", ug, "undo");
  undo.type = "button";
  undo.dataset.action = "undo";
  undo.title = "undo (Ctrl+Z)";
  const redo = el("button", "", ug, "redo");
  redo.type = "button";
  redo.dataset.action = "redo";
  redo.title = "redo (Ctrl+Shift+Z, Ctrl+Y)";
  const counts = el("span", "mv-ptext", bar);
  return {
    bar,
    tools,
    label,
    swatch,
    radius,
    radiusText,
    sphere,
    inWindow,
    tolerance,
    accept,
    reject,
    fill,
    interp,
    undo,
    redo,
    counts,
  };
}

export function buildControls(root: HTMLElement): Controls {
  const toolbar = el("div", "mv-toolbar", root);
  const title = el("span", "mv-title", toolbar);
  const pg = el("div", "mv-group", toolbar);
  const presets: Record<string, HTMLButtonElement> = {};
  for (const p of PRESET_NAMES) {
    const b = el("button", "", pg, p === "mediastinum" ? "mediast." : p.replace("_", " "));
    b.type = "button";
    b.dataset.preset = p;
    b.title = `window preset: ${p}`;
    presets[p] = b;
  }
  const wl = el("span", "mv-wl", toolbar);
  wl.title = "window width / level (right-drag on an image to adjust)";
  const layout = select(toolbar, "layout", [
    ["three", "3 planes + 3D"],
    ["axial", "axial"],
    ["coronal", "coronal"],
    ["sagittal", "sagittal"],
  ]);
  const convention = select(toolbar, "display convention", [
    ["radiological", "radiological"],
    ["neurological", "neurological"],
  ]);
  const overlay = select(toolbar, "overlay", [
    ["labels", "labels"],
    ["prediction", "prediction"],
    ["compare", "compare TP/FP/FN"],
    ["none", "no overlay"],
  ]);
  const ol = el("label", "", toolbar, "opacity");
  const opacity = el("input", "", ol);
  opacity.type = "range";
  opacity.min = "0";
  opacity.max = "1";
  opacity.step = "0.05";
  opacity.style.width = "70px";
  const ll = el("label", "", toolbar);
  const outline = el("input", "", ll);
  outline.type = "checkbox";
  ll.appendChild(document.createTextNode("outline"));
  const l3 = el("label", "", toolbar);
  const show3d = el("input", "", l3);
  show3d.type = "checkbox";
  l3.appendChild(document.createTextNode("3D"));
  const frameBox = el("label", "", toolbar);
  frameBox.title = "volume of the 4-D series (time, phase, echo ...)";
  const frameName = el("span", "", frameBox, "t");
  const frame = el("input", "", frameBox);
  frame.type = "range";
  frame.min = "0";
  frame.step = "1";
  frame.style.width = "90px";
  frame.dataset.frame = "";
  const frameText = el("span", "mv-wl", frameBox);
  frameBox.style.display = "none";
  const ptext = el("span", "mv-ptext", toolbar);

  const edit = buildEditBar(root);
  const body = el("div", "mv-body", root);
  const grid = el("div", "mv-grid", body);
  const side = el("div", "mv-side", body);
  el("h4", "", side, "Overlay");
  const legend = el("div", "", side);
  el("h4", "", side, "Measure");
  const measure = el("button", "mv-measure", side, "label statistics");
  measure.type = "button";
  measure.dataset.action = "stats";
  measure.title = "volume (mL) and mean / SD of the image in each label";
  const stats = el("table", "mv-stats", side);
  stats.dataset.stats = "";
  const info = el("div", "mv-info", root, "Click an image to inspect a voxel.");
  const progress = el("div", "mv-progress", root);
  const bar = el("div", "", progress);
  return {
    frameBox,
    frameName,
    frame,
    frameText,
    toolbar,
    title,
    presets,
    wl,
    layout,
    convention,
    overlay,
    opacity,
    outline,
    show3d,
    ptext,
    body,
    grid,
    side,
    legend,
    measure,
    stats,
    info,
    progress,
    bar,
    edit,
  };
}

export interface LegendItem {
  value: number;
  name: string;
  color: [number, number, number];
  hidden: boolean;
  toggle: boolean;
}

/** (Re)build the legend: checkbox per label (toggles hidden_labels), or the compare key. */
export function renderLegend(box: HTMLElement, items: LegendItem[], onToggle: (value: number, visible: boolean) => void): void {
  box.textContent = "";
  if (!items.length) {
    el("div", "mv-leg", box, "none");
    return;
  }
  for (const it of items) {
    const row = el("label", "mv-leg", box);
    row.title = `${it.name} (${it.value})`;
    if (it.toggle) {
      const cb = el("input", "", row);
      cb.type = "checkbox";
      cb.checked = !it.hidden;
      cb.dataset.label = String(it.value);
      cb.addEventListener("change", () => onToggle(it.value, cb.checked));
    }
    const sw = el("span", "mv-sw", row);
    sw.style.background = `rgb(${it.color.join(",")})`;
    el("span", "", row, it.name);
  }
}
