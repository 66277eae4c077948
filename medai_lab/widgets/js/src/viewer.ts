// The viewer: wires model traits, transport, panes, controls, input and test hooks together.
import {
  clamp, planeDef, planeSize, planeToVoxel, sliceAxis, voxelToPlane, voxelToWorld, type Fit,
} from "./geometry";
import { installHooks } from "./hooks";
import { blend, classify, colorTable, COMPARE_COLORS, labelColor, labelName, pack } from "./overlay";
import { Pane3D } from "./pane3d";
import { PLANE_COLORS, PlanePane } from "./pane";
import { cameraBasis } from "./raycast";
import { blendCompareFilled, blendLabelsFilled, extractValues, renderGrey, sliceMaps } from "./slice";
import { CSS } from "./style";
import { VolumeStore } from "./transport";
import {
  PLANES, type AnyModel, type Convention, type Layout, type Level, type Meta, type OverlayMode,
  type PlaneName, type Vec3,
} from "./types";
import { buildControls, renderLegend, type Controls, type LegendItem } from "./ui";
import { Lut, presetWindow } from "./windowing";

const SAVE_INTERVAL_MS = 100;
const STATUS_INTERVAL_MS = 100;
const RENDER_3D_PX = 224;
const RENDER_3D_DRAG_PX = 144;
const COMPARE_PACKED: [number, number, number] = [pack(COMPARE_COLORS.TP), pack(COMPARE_COLORS.FP), pack(COMPARE_COLORS.FN)];

type Drag =
  | { kind: "cursor"; plane: PlaneName; id: number }
  | { kind: "pan"; plane: PlaneName; id: number; x: number; y: number }
  | { kind: "wl"; plane: PlaneName; id: number; x: number; y: number; w: number; l: number }
  | { kind: "rotate"; id: number; x: number; y: number; az: number; el: number };

function isVec3(v: unknown): v is Vec3 {
  return Array.isArray(v) && v.length === 3 && v.every((x) => typeof x === "number" && isFinite(x));
}

function fmt(x: number, d = 1): string {
  return Number.isInteger(x) ? String(x) : x.toFixed(d);
}

export class Viewer {
  readonly root: HTMLDivElement;
  private ui: Controls;
  private panes: Record<PlaneName, PlanePane>;
  private pane3d: Pane3D;
  private store: VolumeStore;

  private meta: Meta | undefined;
  private win: [number, number] = [400, 40];
  private preset = "auto";
  private cursor: Vec3 = [0, 0, 0];
  private layout: Layout = "three";
  private convention: Convention = "radiological";
  private overlayMode: OverlayMode = "labels";
  private opacity = 0.5;
  private outline = false;
  private hidden = new Set<number>();
  private show3d = true;

  private lut: Lut | null = null;
  private ctable: Uint32Array = colorTable(undefined, new Set());
  private active: PlaneName = "axial";
  private dirtySlice = new Set<PlaneName>();
  private dirtyView = new Set<PlaneName>();
  private dirtyXhair = true;
  private dirty3d = true;
  private raf = 0;
  private drag: Drag | null = null;
  private dragging3d = false;

  // Hooks / metrics.
  private readonly t0 = performance.now();
  latencies: number[] = [];
  paintLatencies: number[] = [];
  private pendingLat: number[] = [];
  private latRaf = 0;
  firstPaintMs: number | null = null;
  paints = 0;
  private error = "";
  private loadWaiters: (() => void)[] = [];

  private saveTimer = 0;
  private lastSave = 0;
  private statusTimer = 0;
  private lastStatus = 0;
  private disposers: (() => void)[] = [];
  private destroyed = false;

  constructor(private model: AnyModel, el: HTMLElement) {
    const root = (this.root = document.createElement("div"));
    root.className = "medai-viewer";
    root.setAttribute("data-medai-viewer", "");
    root.setAttribute("data-lm-suppress-shortcuts", "true"); // keys stay with us in JupyterLab
    root.tabIndex = 0;
    const style = document.createElement("style");
    style.textContent = CSS;
    root.appendChild(style);
    this.ui = buildControls(root);
    this.panes = { axial: new PlanePane("axial"), coronal: new PlanePane("coronal"), sagittal: new PlanePane("sagittal") };
    this.pane3d = new Pane3D();
    // Grid order: axial | coronal / sagittal | 3D.
    for (const p of PLANES) this.ui.grid.appendChild(this.panes[p].root);
    this.ui.grid.appendChild(this.pane3d.root);
    el.appendChild(root);

    this.store = new VolumeStore({
      onProgress: () => this.onProgress(),
      onLevelComplete: (lv) => this.onLevelComplete(lv),
      onError: (m) => this.setError(m),
    });

    this.readTraits();
    this.bindModel();
    this.bindControls();
    for (const p of PLANES) this.bindPane(p);
    this.bind3d();
    this.bindKeys();
    this.observeSize();
    this.disposers.push(installHooks(this));
    this.syncControls();
    this.requestRender();
    this.model.send({ type: "ready" });
  }

  // ---------------------------------------------------------------- model traits

  private readTraits(): void {
    const m = this.model;
    this.applyMeta(m.get("meta"));
    const layout = m.get("pane_layout");
    if (["three", "axial", "coronal", "sagittal"].includes(layout)) this.layout = layout;
    if (m.get("convention") === "neurological") this.convention = "neurological";
    const om = m.get("overlay_mode");
    if (["labels", "prediction", "compare", "none"].includes(om)) this.overlayMode = om;
    const op = Number(m.get("opacity"));
    if (isFinite(op)) this.opacity = clamp(op, 0, 1);
    this.outline = !!m.get("outline");
    this.hidden = new Set((m.get("hidden_labels") ?? []).map(Number));
    const s3 = m.get("show_3d");
    this.show3d = s3 === undefined || s3 === null ? true : !!s3;
    this.ctable = colorTable(this.meta?.labels, this.hidden);
    this.preset = String(m.get("preset") || "auto");
    const w = m.get("window");
    if (Array.isArray(w) && w.length === 2 && Number(w[0]) > 0) this.win = [Number(w[0]), Number(w[1])];
    else {
      const pw = presetWindow(this.preset, this.meta);
      if (pw) this.win = pw;
      this.commit("window", [...this.win], true);
    }
    const c = m.get("cursor");
    if (isVec3(c)) this.cursor = this.clampCursor(c);
    else if (this.meta) this.commit("cursor", [...this.cursor], true);
    this.rebuildLut();
  }

  private bindModel(): void {
    const on = (ev: string, cb: (...a: any[]) => void) => {
      this.model.on(ev, cb);
      this.disposers.push(() => this.model.off(ev, cb));
    };
    on("msg:custom", (msg: any, buffers: unknown[]) => this.store.handle(msg, buffers));
    on("change:meta", () => {
      this.applyMeta(this.model.get("meta"));
      this.rebuildLut();
      this.ctable = colorTable(this.meta?.labels, this.hidden);
      this.update3dVolume();
      this.syncControls();
      this.markAll();
    });
    on("change:window", () => {
      const w = this.model.get("window");
      if (!Array.isArray(w) || w.length !== 2 || !(Number(w[0]) > 0)) return;
      if (w[0] === this.win[0] && w[1] === this.win[1]) return;
      this.win = [Number(w[0]), Number(w[1])];
      this.rebuildLut();
      this.syncControls();
      this.markSlices();
    });
    on("change:preset", () => {
      const p = String(this.model.get("preset") || "auto");
      if (p === this.preset) return;
      this.applyPreset(p, false);
    });
    on("change:cursor", () => {
      const c = this.model.get("cursor");
      if (!isVec3(c)) return;
      this.setCursor(this.clampCursor(c), null, false);
    });
    on("change:pane_layout", () => {
      const l = this.model.get("pane_layout");
      if (["three", "axial", "coronal", "sagittal"].includes(l) && l !== this.layout) {
        this.layout = l;
        this.syncControls();
        this.markAll();
      }
    });
    on("change:convention", () => {
      const c: Convention = this.model.get("convention") === "neurological" ? "neurological" : "radiological";
      if (c !== this.convention) { this.convention = c; this.syncControls(); this.markAll(); }
    });
    on("change:overlay_mode", () => {
      const om = this.model.get("overlay_mode");
      if (["labels", "prediction", "compare", "none"].includes(om) && om !== this.overlayMode) {
        this.overlayMode = om;
        this.syncControls();
        this.markSlices();
      }
    });
    on("change:opacity", () => {
      const op = Number(this.model.get("opacity"));
      if (isFinite(op) && op !== this.opacity) { this.opacity = clamp(op, 0, 1); this.syncControls(); this.markSlices(); }
    });
    on("change:outline", () => {
      const o = !!this.model.get("outline");
      if (o !== this.outline) { this.outline = o; this.syncControls(); this.markSlices(); }
    });
    on("change:hidden_labels", () => {
      const h = new Set<number>((this.model.get("hidden_labels") ?? []).map(Number));
      if (h.size === this.hidden.size && [...h].every((x) => this.hidden.has(x))) return;
      this.setHidden(h, false);
    });
    on("change:show_3d", () => {
      const s = !!this.model.get("show_3d");
      if (s !== this.show3d) { this.show3d = s; this.syncControls(); this.dirty3d = true; this.requestRender(); }
    });
  }

  /** Set a trait locally; save now, or coalesced to at most one save per SAVE_INTERVAL_MS. */
  private commit(name: string, value: unknown, now = false): void {
    this.model.set(name, value);
    const since = performance.now() - this.lastSave;
    if (now || since >= SAVE_INTERVAL_MS) {
      if (this.saveTimer) { clearTimeout(this.saveTimer); this.saveTimer = 0; }
      this.lastSave = performance.now();
      this.model.save_changes();
    } else if (!this.saveTimer) {
      this.saveTimer = window.setTimeout(() => {
        this.saveTimer = 0;
        this.lastSave = performance.now();
        if (!this.destroyed) this.model.save_changes();
      }, SAVE_INTERVAL_MS - since);
    }
  }

  private applyMeta(meta: any): void {
    if (!meta || !isVec3(meta.shape)) { this.meta = undefined; return; }
    const shape = meta.shape.map((x: number) => Math.max(1, Math.round(x))) as Vec3;
    const spacing = isVec3(meta.spacing) ? (meta.spacing.map((x: number) => (x > 0 ? x : 1)) as Vec3) : ([1, 1, 1] as Vec3);
    const prevShape = this.meta?.shape;
    this.meta = { ...meta, shape, spacing, dtype: meta.dtype || "int16", range: meta.range || [0, 1] };
    this.store.prune(meta.volumes, shape);
    const fresh = !prevShape || prevShape.some((s, a) => s !== shape[a]);
    if (fresh && !isVec3(this.model.get("cursor"))) this.cursor = [shape[0] >> 1, shape[1] >> 1, shape[2] >> 1];
    this.cursor = this.clampCursor(this.cursor);
    this.ui.title.textContent = meta.title || "";
    this.ui.title.title = meta.title || "";
    const h = Number(meta.height);
    if (h > 0) this.ui.grid.style.height = `${h}px`;
  }

  private clampCursor(c: Vec3): Vec3 {
    const s = this.meta?.shape;
    if (!s) return [Math.round(c[0]), Math.round(c[1]), Math.round(c[2])];
    return [0, 1, 2].map((a) => clamp(Math.round(c[a]), 0, s[a] - 1)) as Vec3;
  }

  private rebuildLut(): void {
    const img = this.store.best("image");
    const dtype = img?.dtype ?? this.meta?.dtype ?? "int16";
    this.lut = new Lut(dtype, this.win[0], this.win[1]);
  }

  // ---------------------------------------------------------------- transport callbacks

  private onProgress(): void {
    const s = this.store;
    const frac = s.expectedBytes > 0 ? s.decodedBytes / s.expectedBytes : 0;
    const loading = s.loading();
    this.ui.progress.classList.toggle("mv-done", !loading);
    this.ui.bar.style.width = `${Math.round(frac * 100)}%`;
    const lvl = s.bestLevelNumber("image");
    this.ui.ptext.textContent = loading
      ? `loading ${Math.round(frac * 100)}%${lvl > 0 ? " (preview shown)" : ""}`
      : this.error ? "" : "";
    this.scheduleStatus();
  }

  private onLevelComplete(lv: Level): void {
    if (lv.volume === "image") {
      const best = this.store.best("image");
      if (best === lv) {
        this.rebuildLut();
        this.markSlices();
        this.updateInfo();
      }
    } else if (lv.volume === "labels" || lv.volume === "prediction") {
      this.markSlices();
      this.syncLegend();
    } else if (lv.volume === "labels3d") {
      this.update3dVolume();
    }
    if (this.allLoaded()) {
      const w = this.loadWaiters;
      this.loadWaiters = [];
      for (const f of w) f();
    }
    this.scheduleStatus(true);
  }

  private update3dVolume(): void {
    const lv = this.store.best("labels3d");
    if (lv && this.meta) this.pane3d.caster.setVolume(lv, this.meta.spacing, this.ctable);
    this.dirty3d = true;
    this.requestRender();
  }

  private setError(m: string): void {
    this.error = m;
    console.error("[medai viewer]", m);
    this.ui.ptext.textContent = m;
    this.ui.ptext.classList.add("mv-error");
    this.scheduleStatus(true);
  }

  private scheduleStatus(now = false): void {
    if (this.statusTimer) return;
    const wait = now ? 0 : Math.max(0, STATUS_INTERVAL_MS - (performance.now() - this.lastStatus));
    this.statusTimer = window.setTimeout(() => {
      this.statusTimer = 0;
      if (this.destroyed) return;
      this.lastStatus = performance.now();
      const s = this.store;
      this.model.set("status", {
        received: s.decodedBytes, total: s.expectedBytes, wire: s.wireBytes,
        level: s.bestLevelNumber("image"),
        first_paint_ms: this.firstPaintMs === null ? null : Math.round(this.firstPaintMs * 10) / 10,
        loading: s.loading(), error: this.error || null,
      });
      this.model.save_changes();
    }, wait);
  }

  // ---------------------------------------------------------------- rendering

  private visible(p: PlaneName): boolean {
    return this.layout === "three" || this.layout === p;
  }

  private markSlices(): void {
    for (const p of PLANES) { this.dirtySlice.add(p); this.dirtyView.add(p); }
    this.dirtyXhair = true;
    this.requestRender();
  }

  private markAll(): void {
    this.markSlices();
    this.dirty3d = true;
  }

  private requestRender(): void {
    if (this.raf || this.destroyed) return;
    this.raf = requestAnimationFrame(() => {
      this.raf = 0;
      this.renderNow();
    });
  }

  private renderNow(): void {
    for (const p of PLANES) {
      if (!this.visible(p)) continue;
      if (this.dirtySlice.has(p)) this.renderSlice(p);
      if (this.dirtyView.has(p)) this.present(p);
    }
    if (this.dirtyXhair) this.drawCrosshairs();
    if (this.dirty3d && this.layout === "three") {
      this.dirty3d = false;
      this.pane3d.render(this.dragging3d ? RENDER_3D_DRAG_PX : RENDER_3D_PX, this.show3d);
    }
  }

  /** Recompute the slice image of a plane (grey LUT pass + overlay), into its offscreen canvas. */
  private renderSlice(p: PlaneName): void {
    this.dirtySlice.delete(p);
    const img = this.store.best("image");
    const meta = this.meta, lut = this.lut;
    if (!img || !meta || !lut) return;
    const pane = this.panes[p];
    const def = planeDef(p, this.convention);
    const W = img.shape[def.col], H = img.shape[def.row];
    pane.ensureGrid(W, H);
    const slice = this.cursor[def.slice];
    const out32 = pane.out32!;
    renderGrey(out32, sliceMaps(def, meta.shape, slice, img, img), img, lut);
    const mode = this.overlayMode;
    if (mode !== "none") {
      const gtLv = mode !== "prediction" ? this.store.best("labels") ?? null : null;
      const prLv = mode !== "labels" ? this.store.best("prediction") ?? null : null;
      const mg = gtLv ? sliceMaps(def, meta.shape, slice, img, gtLv) : null;
      const mp = prLv ? sliceMaps(def, meta.shape, slice, img, prLv) : null;
      if (this.outline) {
        // Outline needs neighbours: classify into ids first, then draw edges.
        let gt: Int32Array | null = null, pred: Int32Array | null = null;
        if (gtLv && mg) { gt = pane.gt!; extractValues(gt, mg, gtLv); }
        if (prLv && mp) { pred = pane.pred!; extractValues(pred, mp, prLv); }
        if ((gt || pred) && classify(mode, gt, pred, this.ctable, pane.ids!, pane.colors!, W * H))
          blend(out32, W, H, pane.ids!, pane.colors!, this.opacity, true);
      } else {
        const a = Math.round(clamp(this.opacity, 0, 1) * 256);
        if (mode === "compare") {
          if (mg || mp) blendCompareFilled(out32, mg, gtLv, mp, prLv, this.ctable, COMPARE_PACKED, a);
        } else {
          const lv = mode === "prediction" ? prLv : gtLv, m = mode === "prediction" ? mp : mg;
          if (lv && m) blendLabelsFilled(out32, m, lv, this.ctable, a);
        }
      }
    }
    pane.commitSlice();
    this.paints++;
    if (this.firstPaintMs === null) {
      this.firstPaintMs = performance.now() - this.t0;
      this.scheduleStatus(true);
    }
    const n = meta.shape[def.slice];
    pane.setLabel(`${p} ${slice + 1}/${n}${img.level > 0 ? " · preview" : ""}`);
    this.dirtyView.add(p);
  }

  private fitOf(p: PlaneName): { f: Fit; w: number; h: number } | null {
    const meta = this.meta;
    if (!meta) return null;
    const s = planeSize(p, meta.shape, meta.spacing);
    return { f: this.panes[p].fit(s.w, s.h, s.sx, s.sy), w: s.w, h: s.h };
  }

  private present(p: PlaneName): void {
    this.dirtyView.delete(p);
    const fw = this.fitOf(p);
    if (!fw) return;
    this.panes[p].present(fw.f, fw.w, fw.h);
  }

  private drawCrosshairs(): void {
    this.dirtyXhair = false;
    const meta = this.meta;
    for (const p of PLANES) {
      if (!this.visible(p)) continue;
      const pane = this.panes[p];
      const fw = this.fitOf(p);
      if (!fw || !meta || !this.store.best("image")) { pane.drawCrosshair(null, null, "", ""); continue; }
      const [u, v] = voxelToPlane(p, this.convention, meta.shape, this.cursor);
      const def = planeDef(p, this.convention);
      const byAxis = (a: number) => PLANE_COLORS[PLANES.find((q) => sliceAxis(q) === a)!];
      pane.drawCrosshair(fw.f.ox + u * fw.f.kx, fw.f.oy + v * fw.f.ky, byAxis(def.col), byAxis(def.row));
    }
  }

  /** Paint now (inside the input handler) and record input->frame latency at the next frame. */
  private paintNow(planes: PlaneName[], eventTime: number | null): void {
    for (const p of planes) {
      if (!this.visible(p)) continue;
      this.renderSlice(p);
      this.present(p);
    }
    this.drawCrosshairs();
    if (eventTime !== null) {
      this.paintLatencies.push(performance.now() - eventTime);
      this.pendingLat.push(eventTime);
      if (!this.latRaf) {
        this.latRaf = requestAnimationFrame(() => {
          this.latRaf = 0;
          const now = performance.now();
          for (const t of this.pendingLat) this.latencies.push(now - t);
          this.pendingLat.length = 0;
        });
      }
    }
  }

  // ---------------------------------------------------------------- state changes

  /** Move the cursor; repaint planes whose slice changed. `eventTime` marks a user slice change. */
  private setCursor(c: Vec3, eventTime: number | null, save: boolean): void {
    const old = this.cursor;
    if (c[0] === old[0] && c[1] === old[1] && c[2] === old[2]) return;
    this.cursor = c;
    const changed = PLANES.filter((p) => c[sliceAxis(p)] !== old[sliceAxis(p)]);
    if (save) this.commit("cursor", [...c]);
    for (const p of changed) this.panes[p].slider.value = String(c[sliceAxis(p)]);
    if (this.store.best("image") && this.meta) this.paintNow(changed, changed.length ? eventTime : null);
    else this.requestRender();
    this.updateInfo();
  }

  private step(p: PlaneName, delta: number, eventTime: number): void {
    if (!this.meta) return;
    const a = sliceAxis(p);
    const c = [...this.cursor] as Vec3;
    c[a] = clamp(c[a] + delta, 0, this.meta.shape[a] - 1);
    this.setCursor(c, eventTime, true);
  }

  private applyPreset(name: string, save: boolean): void {
    this.preset = name;
    const w = presetWindow(name, this.meta);
    if (w && (w[0] !== this.win[0] || w[1] !== this.win[1])) {
      this.win = w;
      this.rebuildLut();
      this.markSlices();
      this.commit("window", [...w], save);
    }
    if (save) this.commit("preset", name, true);
    this.syncControls();
  }

  private setWindow(w: [number, number]): void {
    this.win = [Math.max(1e-3, w[0]), w[1]];
    this.rebuildLut();
    this.markSlices();
    if (this.preset !== "custom") { this.preset = "custom"; this.commit("preset", "custom"); }
    this.commit("window", [...this.win]);
    this.syncControls();
  }

  private setHidden(h: Set<number>, save: boolean): void {
    this.hidden = h;
    this.ctable = colorTable(this.meta?.labels, h);
    this.pane3d.caster.setTable(this.ctable);
    if (save) this.commit("hidden_labels", [...h].sort((a, b) => a - b), true);
    this.syncLegend();
    this.markAll();
  }

  // ---------------------------------------------------------------- controls

  private syncControls(): void {
    const u = this.ui;
    for (const [name, b] of Object.entries(u.presets)) b.classList.toggle("mv-on", name === this.preset);
    u.wl.textContent = `W ${fmt(this.win[0])} L ${fmt(this.win[1])}`;
    u.layout.value = this.layout;
    u.convention.value = this.convention;
    u.overlay.value = this.overlayMode;
    u.opacity.value = String(this.opacity);
    u.outline.checked = this.outline;
    u.show3d.checked = this.show3d;
    const vols = this.meta?.volumes;
    for (const o of Array.from(u.overlay.options)) {
      if (o.value === "prediction") o.disabled = !!vols && !vols.includes("prediction");
      if (o.value === "compare") o.disabled = !!vols && !(vols.includes("prediction") && vols.includes("labels"));
    }
    u.grid.classList.toggle("mv-single", this.layout !== "three");
    for (const p of PLANES) {
      const pane = this.panes[p];
      pane.root.classList.toggle("mv-shown", this.layout === p);
      pane.setLetters(this.convention);
      const n = this.meta ? this.meta.shape[sliceAxis(p)] : 1;
      pane.slider.max = String(n - 1);
      pane.slider.value = String(this.cursor[sliceAxis(p)]);
    }
    this.syncLegend();
  }

  private syncLegend(): void {
    const items: LegendItem[] = [];
    if (this.overlayMode === "compare") {
      for (const [k, name] of [["TP", "true positive"], ["FP", "false positive"], ["FN", "false negative"]] as const)
        items.push({ value: 0, name, color: COMPARE_COLORS[k], hidden: false, toggle: false });
    }
    const labels = this.meta?.labels ?? [];
    for (const l of labels)
      items.push({ value: l.value, name: l.name, color: labelColor(l.value, labels), hidden: this.hidden.has(l.value), toggle: true });
    renderLegend(this.ui.legend, items, (value, vis) => {
      const h = new Set(this.hidden);
      if (vis) h.delete(value); else h.add(value);
      this.setHidden(h, true);
    });
  }

  private bindControls(): void {
    const u = this.ui;
    for (const [name, b] of Object.entries(u.presets)) b.addEventListener("click", () => this.applyPreset(name, true));
    u.layout.addEventListener("change", () => {
      this.layout = u.layout.value as Layout;
      if (this.layout !== "three") this.active = this.layout;
      this.commit("pane_layout", this.layout, true);
      this.syncControls();
      this.markAll();
    });
    u.convention.addEventListener("change", () => {
      this.convention = u.convention.value as Convention;
      this.commit("convention", this.convention, true);
      this.syncControls();
      this.markAll();
    });
    u.overlay.addEventListener("change", () => {
      this.overlayMode = u.overlay.value as OverlayMode;
      this.commit("overlay_mode", this.overlayMode, true);
      this.syncLegend();
      this.markSlices();
    });
    u.opacity.addEventListener("input", () => {
      this.opacity = Number(u.opacity.value);
      this.commit("opacity", this.opacity);
      this.markSlices();
    });
    u.outline.addEventListener("change", () => {
      this.outline = u.outline.checked;
      this.commit("outline", this.outline, true);
      this.markSlices();
    });
    u.show3d.addEventListener("change", () => {
      this.show3d = u.show3d.checked;
      this.commit("show_3d", this.show3d, true);
      this.dirty3d = true;
      this.requestRender();
    });
    // Keep keyboard focus on the viewer after using a control.
    for (const c of [u.layout, u.convention, u.overlay]) c.addEventListener("change", () => this.root.focus());
  }

  // ---------------------------------------------------------------- input

  private canvasPoint(p: PlaneName, e: { clientX: number; clientY: number }): [number, number] {
    const r = this.panes[p].canvas.getBoundingClientRect();
    return [e.clientX - r.left, e.clientY - r.top];
  }

  private cursorFromPoint(p: PlaneName, x: number, y: number): Vec3 | null {
    const fw = this.fitOf(p);
    if (!fw || !this.meta) return null;
    const u = (x - fw.f.ox) / fw.f.kx, v = (y - fw.f.oy) / fw.f.ky;
    return planeToVoxel(p, this.convention, this.meta.shape, u, v, this.cursor[sliceAxis(p)]);
  }

  private zoomAt(p: PlaneName, factor: number, x: number, y: number): void {
    const pane = this.panes[p];
    const before = this.fitOf(p);
    if (!before) return;
    const u = (x - before.f.ox) / before.f.kx, v = (y - before.f.oy) / before.f.ky;
    pane.view.zoom = clamp(pane.view.zoom * factor, 0.25, 40);
    const after = this.fitOf(p)!;
    pane.view.panX += x - (after.f.ox + u * after.f.kx);
    pane.view.panY += y - (after.f.oy + v * after.f.ky);
    this.dirtyView.add(p);
    this.dirtyXhair = true;
    this.requestRender();
  }

  private setActive(p: PlaneName): void {
    if (this.active === p) return;
    this.active = p;
    for (const q of PLANES) this.panes[q].root.classList.toggle("mv-active", q === p);
  }

  private bindPane(p: PlaneName): void {
    const pane = this.panes[p];
    const c = pane.canvas;
    const listen = <K extends keyof HTMLElementEventMap>(t: HTMLElement, ev: K, fn: (e: HTMLElementEventMap[K]) => void, opts?: AddEventListenerOptions) => {
      t.addEventListener(ev, fn as EventListener, opts);
      this.disposers.push(() => t.removeEventListener(ev, fn as EventListener, opts));
    };
    listen(c, "contextmenu", (e) => e.preventDefault());
    listen(c, "pointerenter", () => this.setActive(p));
    listen(c, "pointerdown", (e) => {
      this.setActive(p);
      this.root.focus({ preventScroll: true });
      const [x, y] = this.canvasPoint(p, e);
      if (e.button === 2) {
        this.drag = { kind: "wl", plane: p, id: e.pointerId, x, y, w: this.win[0], l: this.win[1] };
      } else if (e.button === 1 || (e.button === 0 && e.shiftKey)) {
        this.drag = { kind: "pan", plane: p, id: e.pointerId, x, y };
      } else if (e.button === 0) {
        this.drag = { kind: "cursor", plane: p, id: e.pointerId };
        const v = this.cursorFromPoint(p, x, y);
        if (v) this.setCursor(v, null, true);
        this.updateInfo();
      } else return;
      e.preventDefault();
      try { c.setPointerCapture(e.pointerId); } catch { /* synthetic events */ }
    });
    listen(c, "pointermove", (e) => {
      const d = this.drag;
      if (!d || d.kind === "rotate" || d.plane !== p || d.id !== e.pointerId) return;
      const [x, y] = this.canvasPoint(p, e);
      if (d.kind === "cursor") {
        const v = this.cursorFromPoint(p, x, y);
        if (v) this.setCursor(v, null, true);
      } else if (d.kind === "pan") {
        pane.view.panX += x - d.x;
        pane.view.panY += y - d.y;
        d.x = x; d.y = y;
        this.dirtyView.add(p);
        this.dirtyXhair = true;
        this.requestRender();
      } else if (d.kind === "wl") {
        const r = this.meta?.range ?? [0, 1000];
        const span = Math.max(1e-6, r[1] - r[0]);
        const s = this.lut && this.lut.table ? Math.max(1, span / 600) : span / 600;
        const w = Math.max(1, d.w + (x - d.x) * s), l = d.l - (y - d.y) * s;
        this.setWindow(this.lut && this.lut.table ? [Math.round(w), Math.round(l)] : [w, l]);
      }
    });
    const end = (e: PointerEvent) => {
      if (this.drag && this.drag.kind !== "rotate" && this.drag.id === e.pointerId) this.drag = null;
    };
    listen(c, "pointerup", end);
    listen(c, "pointercancel", end);
    listen(c, "dblclick", () => {
      pane.view = { zoom: 1, panX: 0, panY: 0 };
      this.dirtyView.add(p);
      this.dirtyXhair = true;
      this.requestRender();
    });
    listen(c, "wheel", (e) => {
      e.preventDefault();
      e.stopPropagation();
      this.setActive(p);
      if (e.ctrlKey || e.metaKey) {
        const [x, y] = this.canvasPoint(p, e);
        this.zoomAt(p, Math.exp(-e.deltaY * 0.0015), x, y);
      } else if (e.deltaY !== 0) {
        this.step(p, e.deltaY < 0 ? 1 : -1, e.timeStamp);
      }
    }, { passive: false });
    listen(pane.slider, "input", (e) => {
      if (!this.meta) return;
      const a = sliceAxis(p);
      const cur = [...this.cursor] as Vec3;
      cur[a] = clamp(Number(pane.slider.value), 0, this.meta.shape[a] - 1);
      this.setActive(p);
      this.setCursor(cur, e.timeStamp, true);
    });
  }

  private bind3d(): void {
    const c = this.pane3d.canvas;
    const add = (ev: string, fn: (e: any) => void, opts?: AddEventListenerOptions) => {
      c.addEventListener(ev, fn, opts);
      this.disposers.push(() => c.removeEventListener(ev, fn, opts));
    };
    add("contextmenu", (e: Event) => e.preventDefault());
    add("pointerdown", (e: PointerEvent) => {
      this.drag = { kind: "rotate", id: e.pointerId, x: e.clientX, y: e.clientY, az: this.pane3d.cam.az, el: this.pane3d.cam.el };
      this.dragging3d = true;
      try { c.setPointerCapture(e.pointerId); } catch { /* synthetic */ }
      e.preventDefault();
    });
    add("pointermove", (e: PointerEvent) => {
      const d = this.drag;
      if (!d || d.kind !== "rotate" || d.id !== e.pointerId) return;
      this.pane3d.cam.az = d.az + (e.clientX - d.x) * 0.5;
      this.pane3d.cam.el = clamp(d.el + (e.clientY - d.y) * 0.5, -89, 89);
      this.dirty3d = true;
      this.requestRender();
    });
    const end = (e: PointerEvent) => {
      if (this.drag && this.drag.kind === "rotate" && this.drag.id === e.pointerId) {
        this.drag = null;
        this.dragging3d = false;
        this.dirty3d = true; // full-resolution frame
        this.requestRender();
      }
    };
    add("pointerup", end);
    add("pointercancel", end);
    add("wheel", (e: WheelEvent) => {
      e.preventDefault();
      const cam = this.pane3d.cam;
      cam.zoom = clamp(cam.zoom * Math.exp(-e.deltaY * 0.0015), 0.3, 8);
      this.dirty3d = true;
      this.requestRender();
    }, { passive: false });
    add("dblclick", () => {
      this.pane3d.cam = { az: 0, el: 0, zoom: 1 };
      this.dirty3d = true;
      this.requestRender();
    });
  }

  private bindKeys(): void {
    const onKey = (e: KeyboardEvent) => {
      const t = e.target as HTMLElement;
      if (t && t !== this.root && (t.tagName === "SELECT" || (t.tagName === "INPUT" && (t as HTMLInputElement).type !== "range"))) return;
      const p = this.active;
      let handled = true;
      switch (e.key) {
        case "ArrowUp": this.step(p, 1, e.timeStamp); break;
        case "ArrowDown": this.step(p, -1, e.timeStamp); break;
        case "PageUp": this.step(p, 10, e.timeStamp); break;
        case "PageDown": this.step(p, -10, e.timeStamp); break;
        case "+": case "=": this.zoomAt(p, 1.25, this.panes[p].cssW / 2, this.panes[p].cssH / 2); break;
        case "-": case "_": this.zoomAt(p, 0.8, this.panes[p].cssW / 2, this.panes[p].cssH / 2); break;
        case "0":
          this.panes[p].view = { zoom: 1, panX: 0, panY: 0 };
          this.dirtyView.add(p); this.dirtyXhair = true; this.requestRender();
          break;
        default: handled = false;
      }
      if (handled) { e.preventDefault(); e.stopPropagation(); }
    };
    this.root.addEventListener("keydown", onKey);
    this.disposers.push(() => this.root.removeEventListener("keydown", onKey));
  }

  private observeSize(): void {
    const dpr = () => window.devicePixelRatio || 1;
    const ro = new ResizeObserver(() => {
      if (!this.meta?.height) {
        const w = this.ui.grid.clientWidth;
        const h = Math.round(clamp(this.layout === "three" ? w * 0.82 : w * 0.72, 300, 900));
        if (Math.abs(this.ui.grid.clientHeight - h) > 1) this.ui.grid.style.height = `${h}px`;
      }
      for (const p of PLANES) {
        const st = this.panes[p].canvas.parentElement!;
        if (this.panes[p].resize(st.clientWidth, st.clientHeight, dpr())) {
          this.dirtyView.add(p);
          this.dirtyXhair = true;
        }
      }
      const st3 = this.pane3d.canvas.parentElement!;
      if (this.pane3d.resize(st3.clientWidth, st3.clientHeight, dpr())) this.dirty3d = true;
      // Paint synchronously so a resize never shows an empty canvas.
      this.renderNow();
    });
    ro.observe(this.ui.grid);
    for (const p of PLANES) ro.observe(this.panes[p].root);
    ro.observe(this.pane3d.root);
    this.disposers.push(() => ro.disconnect());
  }

  // ---------------------------------------------------------------- info line

  private valueAt(name: string, ijk: Vec3): number | null {
    const lv = this.store.best(name);
    if (!lv) return null;
    const idx = [0, 1, 2].map((a) => clamp(Math.floor(ijk[a] / (lv.factor[a] || 1)), 0, lv.shape[a] - 1));
    return lv.data[idx[0] + lv.shape[0] * (idx[1] + lv.shape[1] * idx[2])];
  }

  private updateInfo(): void {
    const meta = this.meta;
    if (!meta) return;
    const c = this.cursor;
    const w = voxelToWorld(meta.affine, meta.spacing, c);
    const v = this.valueAt("image", c);
    const ct = (meta.modality || "").toUpperCase() === "CT";
    const lvl = this.store.bestLevelNumber("image");
    let s = `voxel [${c.join(", ")}] · RAS (${w.map((x) => x.toFixed(1)).join(", ")}) mm`;
    if (v !== null) s += ` · ${ct ? "HU" : "value"} ${Number.isInteger(v) ? v : v.toPrecision(5)}${lvl > 0 ? " (preview)" : ""}`;
    const lab = this.valueAt("labels", c);
    if (lab) s += ` · label ${labelName(lab, meta.labels)}`;
    const pr = this.valueAt("prediction", c);
    if (pr) s += ` · pred ${labelName(pr, meta.labels)}`;
    this.ui.info.textContent = s;
  }

  // ---------------------------------------------------------------- hooks

  get bytesReceived(): number {
    return this.store.wireBytes;
  }

  get renders3d(): number {
    return this.pane3d.renders;
  }

  get render3dMs(): number {
    return this.pane3d.lastRenderMs;
  }

  /** Every volume named in meta.volumes has a complete level (full resolution for 2D volumes). */
  private allLoaded(): boolean {
    if (this.store.loading() || !this.store.best("image")) return false;
    const want = this.meta?.volumes ?? ["image"];
    return want.every((n) => {
      const L = this.store.bestLevelNumber(n);
      return n === "labels3d" ? L >= 0 : L === 0;
    });
  }

  whenLoaded(): Promise<void> {
    if (this.allLoaded()) return Promise.resolve();
    return new Promise((res) => this.loadWaiters.push(res));
  }

  state(): Record<string, unknown> {
    const levels: Record<string, number> = {};
    for (const n of ["image", "labels", "prediction", "labels3d"]) levels[n] = this.store.bestLevelNumber(n);
    const zoom: Record<string, number> = {};
    for (const p of PLANES) zoom[p] = this.panes[p].view.zoom;
    return {
      cursor: [...this.cursor], window: [...this.win], preset: this.preset,
      slices: { axial: this.cursor[2], coronal: this.cursor[1], sagittal: this.cursor[0] },
      level: levels.image, levels, loading: this.store.loading(), shape: this.meta ? [...this.meta.shape] : null,
      layout: this.layout, convention: this.convention, overlay_mode: this.overlayMode, opacity: this.opacity,
      outline: this.outline, hidden_labels: [...this.hidden], show_3d: this.show3d, active: this.active, zoom,
      camera: { ...this.pane3d.cam }, error: this.error || null,
    };
  }

  voxelToCanvas(p: PlaneName | "3d", ijk: Vec3): [number, number] | null {
    const meta = this.meta;
    if (!meta) return null;
    if (p === "3d") {
      const { right, up } = cameraBasis(this.pane3d.cam);
      const e = [0, 1, 2].map((a) => meta.shape[a] * meta.spacing[a]);
      const q = [0, 1, 2].map((a) => (ijk[a] + 0.5) * meta.spacing[a] - e[a] / 2);
      const diag = Math.hypot(e[0], e[1], e[2]);
      const pane = this.pane3d;
      const mmPerCss = diag / Math.min(pane.cssW, pane.cssH) / (pane.cam.zoom || 1);
      const d = (v: Vec3) => q[0] * v[0] + q[1] * v[1] + q[2] * v[2];
      return [pane.cssW / 2 + d(right) / mmPerCss, pane.cssH / 2 - d(up) / mmPerCss];
    }
    const fw = this.fitOf(p);
    if (!fw) return null;
    const [u, v] = voxelToPlane(p, this.convention, meta.shape, ijk);
    return [fw.f.ox + u * fw.f.kx, fw.f.oy + v * fw.f.ky];
  }

  sample(p: PlaneName | "3d", ijk: Vec3): [number, number, number, number] | null {
    const xy = this.voxelToCanvas(p, ijk);
    if (!xy) return null;
    const canvas = p === "3d" ? this.pane3d.canvas : this.panes[p].canvas;
    const dpr = p === "3d" ? this.pane3d.dpr : this.panes[p].dpr;
    const x = Math.floor(xy[0] * dpr), y = Math.floor(xy[1] * dpr);
    if (x < 0 || y < 0 || x >= canvas.width || y >= canvas.height) return null;
    const d = canvas.getContext("2d")!.getImageData(x, y, 1, 1).data;
    return [d[0], d[1], d[2], d[3]];
  }

  // ---------------------------------------------------------------- teardown

  destroy(): void {
    this.destroyed = true;
    if (this.raf) cancelAnimationFrame(this.raf);
    if (this.latRaf) cancelAnimationFrame(this.latRaf);
    if (this.saveTimer) clearTimeout(this.saveTimer);
    if (this.statusTimer) clearTimeout(this.statusTimer);
    for (const d of this.disposers.splice(0)) {
      try { d(); } catch { /* ignore */ }
    }
    this.root.remove();
  }
}
