// The viewer: owns the state and wires model traits (sync.ts), transport, panes, rendering
// (render.ts), toolbar/layout (layout.ts), input (input.ts) and test hooks together.
import { Annotator } from "./annotate";
import { clamp, sliceAxis, voxelToPlane } from "./geometry";
import { installHooks } from "./hooks";
import { InputHandler } from "./input";
import { ViewerLayout } from "./layout";
import { colorTable } from "./overlay";
import { Pane3D } from "./pane3d";
import { PlanePane } from "./pane";
import { cameraBasis } from "./raycast";
import { Renderer } from "./render";
import { Ruler } from "./ruler";
import { ViewState } from "./state";
import { CSS } from "./style";
import { ModelSync } from "./sync";
import { VolumeStore } from "./transport";
import {
  PLANES,
  type AnyModel,
  type Convention,
  type LabelInfo,
  type Layout,
  type Level,
  type Meta,
  type OverlayMode,
  type PlaneName,
  type Vec3,
} from "./types";
import { buildControls, type Controls } from "./ui";
import { Lut, presetWindow } from "./windowing";

export class Viewer {
  readonly root: HTMLDivElement;
  // Collaborators (internal; used by the modules above, not part of the hooks).
  readonly ui: Controls;
  readonly panes: Record<PlaneName, PlanePane>;
  readonly pane3d: Pane3D;
  readonly store: VolumeStore;
  readonly render: Renderer;
  readonly sync: ModelSync;
  readonly layoutUi: ViewerLayout;
  readonly annot: Annotator;
  readonly ruler: Ruler;
  private input: InputHandler;

  // View state (state.ts): read here, changed through view.set(); modules subscribe to it.
  readonly view = new ViewState();
  meta: Meta | undefined;
  lut: Lut | null = null;
  ctable: Uint32Array = colorTable(undefined, new Set());

  readonly t0 = performance.now();
  error = "";
  private loadWaiters: (() => void)[] = [];
  readonly disposers: (() => void)[] = [];
  destroyed = false;

  constructor(model: AnyModel, el: HTMLElement) {
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
    this.render = new Renderer(this);
    this.annot = new Annotator(this);
    this.ruler = new Ruler(this);
    this.sync = new ModelSync(this, model);
    this.layoutUi = new ViewerLayout(this);
    this.input = new InputHandler(this);

    this.sync.readTraits();
    // Derived state first (LUT, colour table), then whoever shows or saves the state.
    this.view.on(["win"], () => this.rebuildLut());
    this.view.on(["hidden"], () => {
      this.ctable = colorTable(this.meta?.labels, this.hidden);
      this.pane3d.caster.setTable(this.ctable);
    });
    this.render.watch(this.view);
    this.layoutUi.watch(this.view);
    this.sync.watch(this.view);
    this.sync.bind();
    this.layoutUi.bindControls();
    this.input.bind();
    this.layoutUi.observeSize();
    this.disposers.push(installHooks(this));
    this.layoutUi.syncControls();
    this.render.requestRender();
    model.send({ type: "ready" });
  }

  get cursor(): Vec3 {
    return this.view.f.cursor;
  }
  get win(): [number, number] {
    return this.view.f.win;
  }
  get preset(): string {
    return this.view.f.preset;
  }
  get layout(): Layout {
    return this.view.f.layout;
  }
  get convention(): Convention {
    return this.view.f.convention;
  }
  get overlayMode(): OverlayMode {
    return this.view.f.overlayMode;
  }
  get opacity(): number {
    return this.view.f.opacity;
  }
  get outline(): boolean {
    return this.view.f.outline;
  }
  get hidden(): Set<number> {
    return this.view.f.hidden;
  }
  get show3d(): boolean {
    return this.view.f.show3d;
  }
  get active(): PlaneName {
    return this.view.f.active;
  }
  /** Volume of a 4-D series shown (the kernel streams it as "image"). */
  get frame(): number {
    return this.view.f.frame;
  }

  clampCursor(c: Vec3): Vec3 {
    const s = this.meta?.shape;
    if (!s) return [Math.round(c[0]), Math.round(c[1]), Math.round(c[2])];
    return [0, 1, 2].map((a) => clamp(Math.round(c[a]), 0, s[a] - 1)) as Vec3;
  }

  rebuildLut(): void {
    const img = this.store.best("image");
    const dtype = img?.dtype ?? this.meta?.dtype ?? "int16";
    this.lut = new Lut(dtype, this.win[0], this.win[1]);
  }

  // ---------------------------------------------------------------- transport callbacks

  private onProgress(): void {
    this.layoutUi.showProgress();
    this.sync.scheduleStatus();
  }

  private onLevelComplete(lv: Level): void {
    if (lv.volume === "image") {
      const best = this.store.best("image");
      if (best === lv) {
        this.rebuildLut();
        this.render.markSlices();
        this.layoutUi.updateInfo();
      }
    } else if (lv.volume === "labels" || lv.volume === "prediction") {
      this.render.markSlices();
      this.layoutUi.syncLegend();
    } else if (lv.volume === "labels3d") {
      this.update3dVolume();
    }
    if (this.allLoaded()) {
      const w = this.loadWaiters;
      this.loadWaiters = [];
      for (const f of w) f();
    }
    this.sync.scheduleStatus(true);
  }

  update3dVolume(): void {
    const lv = this.store.best("labels3d");
    if (lv && this.meta) this.pane3d.caster.setVolume(lv, this.meta.spacing, this.ctable);
    this.render.mark3d();
  }

  private setError(m: string): void {
    this.error = m;
    console.error("[medai viewer]", m);
    this.layoutUi.showError(m);
    this.sync.scheduleStatus(true);
  }

  // ---------------------------------------------------------------- state changes

  /** Move the cursor; repaint planes whose slice changed. `eventTime` marks a user slice change. */
  setCursor(c: Vec3, eventTime: number | null, save: boolean): void {
    const old = this.cursor;
    if (!this.view.set({ cursor: c }, save ? "user" : "model")) return;
    const changed = PLANES.filter((p) => c[sliceAxis(p)] !== old[sliceAxis(p)]);
    for (const p of changed) this.panes[p].slider.value = String(c[sliceAxis(p)]);
    // Painted here, inside the input handler (latency), not from a change event.
    if (this.store.best("image") && this.meta) this.render.paintNow(changed, changed.length ? eventTime : null);
    else this.render.requestRender();
    this.layoutUi.updateInfo();
  }

  step(p: PlaneName, delta: number, eventTime: number): void {
    if (!this.meta) return;
    const a = sliceAxis(p);
    const c = [...this.cursor] as Vec3;
    c[a] = clamp(c[a] + delta, 0, this.meta.shape[a] - 1);
    this.setCursor(c, eventTime, true);
  }

  applyPreset(name: string, save: boolean): void {
    const w = presetWindow(name, this.meta) ?? undefined;
    const moved = !!w && (w[0] !== this.win[0] || w[1] !== this.win[1]);
    this.view.set({ preset: name, win: w }, save ? "user" : "model");
    // The host's model learns the window a preset from it implies (as the kernel does itself).
    if (!save && moved) this.sync.commit("window", [...this.win], false);
    this.layoutUi.syncControls();
  }

  setWindow(w: [number, number]): void {
    this.view.set({ win: [Math.max(1e-3, w[0]), w[1]], preset: "custom" }, "user");
  }

  /** Show volume `t` of a 4-D series: the kernel streams it; the view swaps it in when complete. */
  setFrame(t: number, save: boolean): void {
    const n = this.meta?.frames ?? 1;
    this.view.set({ frame: clamp(Math.round(t), 0, n - 1) }, save ? "user" : "model");
  }

  setHidden(h: Set<number>, save: boolean): void {
    this.view.set({ hidden: h }, save ? "user" : "model");
  }

  /** Labels one can paint, in picker order. */
  dictionary(): LabelInfo[] {
    const d = this.meta?.dictionary;
    return d && d.length ? d : (this.meta?.labels ?? []);
  }

  // ---------------------------------------------------------------- hooks (PROTOCOL.md "Test hooks")

  get brushLatencies(): number[] {
    return this.render.brushLatencies;
  }

  get brushPaintLatencies(): number[] {
    return this.render.brushPaintLatencies;
  }

  /** The label value of voxel ijk in this view's (edited) label volume; null without one. */
  labelAt(ijk: Vec3): number | null {
    const lv = this.store.best("labels");
    if (!lv || !this.meta) return null;
    const s = lv.shape;
    const idx = [0, 1, 2].map((a) => clamp(Math.floor(ijk[a] / (lv.factor[a] || 1)), 0, s[a] - 1));
    return lv.data[idx[0] + s[0] * (idx[1] + s[1] * idx[2])];
  }

  get latencies(): number[] {
    return this.render.latencies;
  }

  get paintLatencies(): number[] {
    return this.render.paintLatencies;
  }

  get firstPaintMs(): number | null {
    return this.render.firstPaintMs;
  }

  get paints(): number {
    return this.render.paints;
  }

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
      cursor: [...this.cursor],
      window: [...this.win],
      preset: this.preset,
      slices: { axial: this.cursor[2], coronal: this.cursor[1], sagittal: this.cursor[0] },
      level: levels.image,
      levels,
      loading: this.store.loading(),
      shape: this.meta ? [...this.meta.shape] : null,
      layout: this.layout,
      convention: this.convention,
      overlay_mode: this.overlayMode,
      opacity: this.opacity,
      outline: this.outline,
      hidden_labels: [...this.hidden],
      show_3d: this.show3d,
      active: this.active,
      zoom,
      camera: { ...this.pane3d.cam },
      error: this.error || null,
      edit: this.annot.state(),
      frame: this.frame,
      measurements: this.ruler.items.map((m) => ({ ...m })),
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
    const fw = this.render.fitOf(p);
    if (!fw) return null;
    const [u, v] = voxelToPlane(p, this.convention, meta.shape, ijk);
    return [fw.f.ox + u * fw.f.kx, fw.f.oy + v * fw.f.ky];
  }

  sample(p: PlaneName | "3d", ijk: Vec3): [number, number, number, number] | null {
    const xy = this.voxelToCanvas(p, ijk);
    if (!xy) return null;
    const canvas = p === "3d" ? this.pane3d.canvas : this.panes[p].canvas;
    const dpr = p === "3d" ? this.pane3d.dpr : this.panes[p].dpr;
    const x = Math.floor(xy[0] * dpr),
      y = Math.floor(xy[1] * dpr);
    if (x < 0 || y < 0 || x >= canvas.width || y >= canvas.height) return null;
    const d = canvas.getContext("2d")!.getImageData(x, y, 1, 1).data;
    return [d[0], d[1], d[2], d[3]];
  }

  // ---------------------------------------------------------------- teardown

  destroy(): void {
    this.destroyed = true;
    this.render.dispose();
    this.sync.dispose();
    for (const d of this.disposers.splice(0)) {
      try {
        d();
      } catch {
        /* ignore */
      }
    }
    this.root.remove();
  }
}
