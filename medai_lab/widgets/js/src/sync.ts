// Model/trait synchronisation: initial trait read, change:* listeners, throttled commits
// (set + save_changes) and the coalesced `status` trait.
import type { Tool } from "./annotate";
import { clamp } from "./geometry";
import { colorTable } from "./overlay";
import type { ViewFields, ViewKey, ViewState } from "./state";
import type { AnyModel, Convention, Vec3 } from "./types";
import type { Viewer } from "./viewer";
import { presetWindow } from "./windowing";

const SAVE_INTERVAL_MS = 100;
const STATUS_INTERVAL_MS = 100;

export function isVec3(v: unknown): v is Vec3 {
  return Array.isArray(v) && v.length === 3 && v.every((x) => typeof x === "number" && isFinite(x));
}

/** View-state key -> [model trait, save at once (else coalesced)]; "active" stays local. */
const TRAITS: Partial<Record<ViewKey, [string, boolean]>> = {
  cursor: ["cursor", false],
  win: ["window", false],
  preset: ["preset", true],
  layout: ["pane_layout", true],
  convention: ["convention", true],
  overlayMode: ["overlay_mode", true],
  opacity: ["opacity", false],
  outline: ["outline", true],
  hidden: ["hidden_labels", true],
  show3d: ["show_3d", true],
  frame: ["frame", false],
};

export class ModelSync {
  private saveTimer = 0;
  private lastSave = 0;
  private statusTimer = 0;
  private lastStatus = 0;

  constructor(
    private v: Viewer,
    private model: AnyModel,
  ) {}

  /** Initialise viewer state from the model's traits (committing defaults the model lacks). */
  readTraits(): void {
    const v = this.v,
      m = this.model;
    this.applyMeta(m.get("meta"));
    const init: Partial<ViewFields> = {};
    const layout = m.get("pane_layout");
    if (["three", "axial", "coronal", "sagittal"].includes(layout)) init.layout = layout;
    if (m.get("convention") === "neurological") init.convention = "neurological";
    const om = m.get("overlay_mode");
    if (["labels", "prediction", "compare", "none"].includes(om)) init.overlayMode = om;
    const op = Number(m.get("opacity"));
    if (isFinite(op)) init.opacity = clamp(op, 0, 1);
    init.outline = !!m.get("outline");
    init.hidden = new Set((m.get("hidden_labels") ?? []).map(Number));
    const s3 = m.get("show_3d");
    init.show3d = s3 === undefined || s3 === null ? true : !!s3;
    init.preset = String(m.get("preset") || "auto");
    init.frame = Number(m.get("frame")) || 0;
    const w = m.get("window");
    if (Array.isArray(w) && w.length === 2 && Number(w[0]) > 0) init.win = [Number(w[0]), Number(w[1])];
    else init.win = presetWindow(init.preset, v.meta) ?? undefined;
    v.view.set(init, "local");
    v.ctable = colorTable(v.meta?.labels, v.hidden);
    if (!(Array.isArray(w) && w.length === 2 && Number(w[0]) > 0)) this.commit("window", [...v.win], true);
    const c = m.get("cursor");
    if (isVec3(c)) v.view.set({ cursor: v.clampCursor(c) }, "local");
    else if (v.meta) this.commit("cursor", [...v.cursor], true);
    v.rebuildLut();
    this.readEditTraits();
  }

  /** Editing traits (absent in hosts without them, e.g. the Lab document: defaults stay). */
  private readEditTraits(): void {
    const a = this.v.annot,
      m = this.model;
    const tool = m.get("tool");
    if (typeof tool === "string") a.tool = tool as Tool;
    const lab = Number(m.get("active_label"));
    if (lab >= 1) a.activeLabel = lab;
    const r = Number(m.get("brush_radius"));
    if (isFinite(r) && r >= 0) a.brushRadius = r;
    a.brush3d = !!m.get("brush_3d");
    a.inWindow = !!m.get("brush_in_window");
    const tol = Number(m.get("grow_tolerance"));
    if (isFinite(tol) && tol >= 0) a.growTolerance = tol;
    a.acked = Number(m.get("edit_seq")) || 0;
  }

  /** Write what the user changed to the model (state.ts "user" changes; "model" ones came from
   * it). A preset change saves its window at once, like the preset. */
  watch(view: ViewState): void {
    view.on(null, (c) => {
      if (c.from !== "user") return;
      for (const k of c.keys) {
        const t = TRAITS[k];
        if (!t) continue;
        const value = k === "hidden" ? [...this.v.hidden].sort((a, b) => a - b) : view.f[k];
        this.commit(t[0], Array.isArray(value) ? [...value] : value, t[1] || c.keys.has("preset"));
      }
    });
  }

  /** Subscribe to custom messages and trait changes; unsubscribed through the viewer's disposers. */
  bind(): void {
    const v = this.v,
      model = this.model,
      r = v.render;
    const on = (ev: string, cb: (...a: any[]) => void) => {
      model.on(ev, cb);
      v.disposers.push(() => model.off(ev, cb));
    };
    on("msg:custom", (msg: any, buffers: unknown[]) => {
      if (msg && msg.type === "proposal") v.annot.assist.onProposal(msg, buffers);
      else if (msg && msg.type === "edit") v.annot.onKernelEdit(msg, buffers);
      else if (msg && msg.type === "export_labels") this.exportLabels(msg.id);
      else v.store.handle(msg, buffers);
    });
    on("change:meta", () => {
      v.annot.reset(); // the kernel sets meta for another image: the history is not its
      this.applyMeta(model.get("meta"));
      v.rebuildLut();
      v.ctable = colorTable(v.meta?.labels, v.hidden);
      v.update3dVolume();
      v.layoutUi.syncControls();
      r.markAll();
    });
    on("change:window", () => {
      const w = model.get("window");
      if (!Array.isArray(w) || w.length !== 2 || !(Number(w[0]) > 0)) return;
      v.view.set({ win: [Number(w[0]), Number(w[1])] }, "model");
    });
    on("change:preset", () => {
      const p = String(model.get("preset") || "auto");
      if (p === v.preset) return;
      v.applyPreset(p, false);
    });
    on("change:cursor", () => {
      const c = model.get("cursor");
      if (!isVec3(c)) return;
      v.setCursor(v.clampCursor(c), null, false);
    });
    on("change:pane_layout", () => {
      const l = model.get("pane_layout");
      if (["three", "axial", "coronal", "sagittal"].includes(l)) v.view.set({ layout: l }, "model");
    });
    on("change:convention", () => {
      const c: Convention = model.get("convention") === "neurological" ? "neurological" : "radiological";
      v.view.set({ convention: c }, "model");
    });
    on("change:overlay_mode", () => {
      const om = model.get("overlay_mode");
      if (["labels", "prediction", "compare", "none"].includes(om)) v.view.set({ overlayMode: om }, "model");
    });
    on("change:opacity", () => {
      const op = Number(model.get("opacity"));
      if (isFinite(op)) v.view.set({ opacity: clamp(op, 0, 1) }, "model");
    });
    on("change:outline", () => {
      v.view.set({ outline: !!model.get("outline") }, "model");
    });
    on("change:hidden_labels", () => {
      v.setHidden(new Set<number>((model.get("hidden_labels") ?? []).map(Number)), false);
    });
    on("change:tool", () => {
      const t = model.get("tool");
      if (t !== v.annot.tool) v.annot.setTool(t, false);
    });
    on("change:active_label", () => {
      const l = Number(model.get("active_label"));
      if (l !== v.annot.activeLabel) v.annot.setLabel(l, false);
    });
    on("change:brush_radius", () => {
      const r = Number(model.get("brush_radius"));
      if (isFinite(r) && r !== v.annot.brushRadius) v.annot.setRadius(r, false);
    });
    on("change:brush_3d", () => {
      v.annot.brush3d = !!model.get("brush_3d");
      v.layoutUi.syncControls();
    });
    on("change:brush_in_window", () => {
      v.annot.inWindow = !!model.get("brush_in_window");
      v.layoutUi.syncControls();
    });
    on("change:grow_tolerance", () => {
      const t = Number(model.get("grow_tolerance"));
      if (isFinite(t) && t >= 0) {
        v.annot.growTolerance = t;
        v.layoutUi.syncControls();
      }
    });
    on("change:edit_seq", () => {
      v.annot.acked = Number(model.get("edit_seq")) || 0;
    });
    on("change:frame", () => v.setFrame(Number(model.get("frame")) || 0, false));
    on("change:show_3d", () => {
      v.view.set({ show3d: !!model.get("show_3d") }, "model");
    });
  }

  /** A custom message to the kernel (edits) with binary buffers. */
  /** Answer a host's `export_labels` (the Lab document's Save): the edited label volume. */
  private exportLabels(id: unknown): void {
    const lv = this.v.annot.labels();
    if (!lv) {
      this.send({ type: "labels", id, error: "the labels are still loading" }, []);
      return;
    }
    const data = (lv.data as Uint8Array | Uint16Array).slice();
    this.send({ type: "labels", id, shape: [...lv.shape], dtype: lv.dtype }, [data.buffer]);
  }

  send(content: unknown, buffers: ArrayBuffer[]): void {
    this.model.send(content, undefined, buffers);
  }

  /** Set a trait locally; save now, or coalesced to at most one save per SAVE_INTERVAL_MS. */
  commit(name: string, value: unknown, now = false): void {
    this.model.set(name, value);
    const since = performance.now() - this.lastSave;
    if (now || since >= SAVE_INTERVAL_MS) {
      if (this.saveTimer) {
        clearTimeout(this.saveTimer);
        this.saveTimer = 0;
      }
      this.lastSave = performance.now();
      this.model.save_changes();
    } else if (!this.saveTimer) {
      this.saveTimer = window.setTimeout(() => {
        this.saveTimer = 0;
        this.lastSave = performance.now();
        if (!this.v.destroyed) this.model.save_changes();
      }, SAVE_INTERVAL_MS - since);
    }
  }

  /** Apply the `meta` trait: shape/spacing defaults, store pruning, cursor reset, title, height. */
  private applyMeta(meta: any): void {
    const v = this.v;
    if (!meta || !isVec3(meta.shape)) {
      v.meta = undefined;
      return;
    }
    const shape = meta.shape.map((x: number) => Math.max(1, Math.round(x))) as Vec3;
    const spacing = isVec3(meta.spacing) ? (meta.spacing.map((x: number) => (x > 0 ? x : 1)) as Vec3) : ([1, 1, 1] as Vec3);
    const prevShape = v.meta?.shape;
    // Colours and the legend cover the label dictionary (what can be painted) too.
    const labels = [...(meta.labels ?? [])];
    for (const d of meta.dictionary ?? []) if (!labels.some((l) => l.value === d.value)) labels.push(d);
    labels.sort((a, b) => a.value - b.value);
    v.meta = { ...meta, labels, shape, spacing, dtype: meta.dtype || "int16", range: meta.range || [0, 1] };
    v.store.prune(meta.volumes, shape);
    const fresh = !prevShape || prevShape.some((s, a) => s !== shape[a]);
    const centre: Vec3 = [shape[0] >> 1, shape[1] >> 1, shape[2] >> 1];
    v.view.set({ cursor: v.clampCursor(fresh && !isVec3(this.model.get("cursor")) ? centre : v.cursor) }, "local");
    v.ui.title.textContent = meta.title || "";
    v.ui.title.title = meta.title || "";
    const h = Number(meta.height);
    if (h > 0) v.ui.grid.style.height = `${h}px`;
  }

  /** Publish load progress / first paint / errors as the `status` trait, at most every 100 ms. */
  scheduleStatus(now = false): void {
    if (this.statusTimer) return;
    const wait = now ? 0 : Math.max(0, STATUS_INTERVAL_MS - (performance.now() - this.lastStatus));
    this.statusTimer = window.setTimeout(() => {
      this.statusTimer = 0;
      const v = this.v;
      if (v.destroyed) return;
      this.lastStatus = performance.now();
      const s = v.store;
      const fp = v.render.firstPaintMs;
      this.model.set("status", {
        received: s.decodedBytes,
        total: s.expectedBytes,
        wire: s.wireBytes,
        level: s.bestLevelNumber("image"),
        first_paint_ms: fp === null ? null : Math.round(fp * 10) / 10,
        loading: s.loading(),
        error: v.error || null,
      });
      this.model.save_changes();
    }, wait);
  }

  dispose(): void {
    if (this.saveTimer) clearTimeout(this.saveTimer);
    if (this.statusTimer) clearTimeout(this.statusTimer);
  }
}
