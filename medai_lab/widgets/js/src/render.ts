// Rendering: dirty tracking, the rAF loop, slice composition (grey + overlay), crosshairs,
// synchronous input paints and the input->frame latency metrics.
import { clamp, planeDef, planeSize, sliceAxis, voxelToPlane, type Fit } from "./geometry";
import { blend, classify, COMPARE_COLORS, pack } from "./overlay";
import { PLANE_COLORS } from "./pane";
import { blendCompareFilled, blendLabelsFilled, extractValues, renderGrey, sliceMaps, type Rect } from "./slice";
import type { ViewState } from "./state";
import { PLANES, type PlaneName, type Vec3 } from "./types";
import type { Viewer } from "./viewer";

const RENDER_3D_PX = 224;
const RENDER_3D_DRAG_PX = 144;
const COMPARE_PACKED: [number, number, number] = [pack(COMPARE_COLORS.TP), pack(COMPARE_COLORS.FP), pack(COMPARE_COLORS.FN)];
/** A model's proposal (not yet accepted) is drawn in this colour over everything. */
export const PREVIEW_COLOR: [number, number, number] = [255, 230, 0];
const PREVIEW_TABLE = Uint32Array.from([0, pack(PREVIEW_COLOR)]);

export class Renderer {
  dirtySlice = new Set<PlaneName>();
  dirtyView = new Set<PlaneName>();
  dirtyXhair = true;
  dirty3d = true;
  /** A 3D orbit drag is in progress: render the volume at the cheaper resolution. */
  dragging3d = false;
  private raf = 0;

  // Metrics (exposed through the viewer's test hooks).
  latencies: number[] = [];
  paintLatencies: number[] = [];
  /** Brush input event -> the next frame after the stroke was painted (ms), and -> painted. */
  brushLatencies: number[] = [];
  brushPaintLatencies: number[] = [];
  private pendingBrush: number[] = [];
  private brushRaf = 0;
  private pendingLat: number[] = [];
  private latRaf = 0;
  firstPaintMs: number | null = null;
  paints = 0;

  constructor(private v: Viewer) {}

  /** Repaint what a view-state change affects (state.ts). */
  watch(view: ViewState): void {
    view.on(["layout", "convention", "hidden"], () => this.markAll());
    view.on(["overlayMode", "opacity", "outline", "win"], () => this.markSlices());
    view.on(["show3d"], () => this.mark3d());
  }

  visible(p: PlaneName): boolean {
    return this.v.layout === "three" || this.v.layout === p;
  }

  markSlices(): void {
    for (const p of PLANES) {
      this.dirtySlice.add(p);
      this.dirtyView.add(p);
    }
    this.dirtyXhair = true;
    this.requestRender();
  }

  markAll(): void {
    this.markSlices();
    this.dirty3d = true;
  }

  /** The view (zoom/pan) of a plane changed: re-present it and redraw crosshairs. */
  markView(p: PlaneName): void {
    this.dirtyView.add(p);
    this.dirtyXhair = true;
    this.requestRender();
  }

  mark3d(): void {
    this.dirty3d = true;
    this.requestRender();
  }

  requestRender(): void {
    if (this.raf || this.v.destroyed) return;
    this.raf = requestAnimationFrame(() => {
      this.raf = 0;
      this.renderNow();
    });
  }

  renderNow(): void {
    for (const p of PLANES) {
      if (!this.visible(p)) continue;
      if (this.dirtySlice.has(p)) this.renderSlice(p);
      if (this.dirtyView.has(p)) this.present(p);
    }
    if (this.dirtyXhair) this.drawCrosshairs();
    if (this.dirty3d && this.v.layout === "three") {
      this.dirty3d = false;
      this.v.pane3d.render(this.dragging3d ? RENDER_3D_DRAG_PX : RENDER_3D_PX, this.v.show3d);
    }
  }

  /** Recompute the slice image of a plane (grey LUT pass + overlay), into its offscreen canvas. */
  private renderSlice(p: PlaneName, rect?: Rect): void {
    this.dirtySlice.delete(p);
    const v = this.v;
    const img = v.store.best("image");
    const meta = v.meta,
      lut = v.lut;
    if (!img || !meta || !lut) return;
    const pane = v.panes[p];
    const def = planeDef(p, v.convention);
    const W = img.shape[def.col],
      H = img.shape[def.row];
    pane.ensureGrid(W, H);
    const slice = v.cursor[def.slice];
    const out32 = pane.out32!;
    // A rectangle only on the full-resolution grid and without outlines (they need neighbours).
    if (rect && (v.outline || img.factor.some((f) => f !== 1) || !pane.hasImage)) rect = undefined;
    renderGrey(out32, sliceMaps(def, meta.shape, slice, img, img), img, lut, rect);
    const mode = v.overlayMode;
    if (mode !== "none") {
      const gtLv = mode !== "prediction" ? (v.store.best("labels") ?? null) : null;
      const prLv = mode !== "labels" ? (v.store.best("prediction") ?? null) : null;
      const mg = gtLv ? sliceMaps(def, meta.shape, slice, img, gtLv) : null;
      const mp = prLv ? sliceMaps(def, meta.shape, slice, img, prLv) : null;
      if (v.outline) {
        // Outline needs neighbours: classify into ids first, then draw edges.
        let gt: Int32Array | null = null,
          pred: Int32Array | null = null;
        if (gtLv && mg) {
          gt = pane.gt!;
          extractValues(gt, mg, gtLv);
        }
        if (prLv && mp) {
          pred = pane.pred!;
          extractValues(pred, mp, prLv);
        }
        if ((gt || pred) && classify(mode, gt, pred, v.ctable, pane.ids!, pane.colors!, W * H))
          blend(out32, W, H, pane.ids!, pane.colors!, v.opacity, true);
      } else {
        const a = Math.round(clamp(v.opacity, 0, 1) * 256);
        if (mode === "compare") {
          if (mg || mp) blendCompareFilled(out32, mg, gtLv, mp, prLv, v.ctable, COMPARE_PACKED, a, rect);
        } else {
          const lv = mode === "prediction" ? prLv : gtLv,
            m = mode === "prediction" ? mp : mg;
          if (lv && m) blendLabelsFilled(out32, m, lv, v.ctable, a, rect);
        }
      }
    }
    const pv = v.annot.assist.previewLevel;
    if (pv && v.annot.assist.preview)
      blendLabelsFilled(out32, sliceMaps(def, meta.shape, slice, img, pv), pv, PREVIEW_TABLE, 160, rect);
    pane.commitSlice(rect);
    this.paints++;
    if (this.firstPaintMs === null) {
      this.firstPaintMs = performance.now() - v.t0;
      v.sync.scheduleStatus(true);
    }
    const n = meta.shape[def.slice];
    pane.setLabel(`${p} ${slice + 1}/${n}${img.level > 0 ? " · preview" : ""}`);
    this.dirtyView.add(p);
  }

  /** The plane pixels covering a box of voxels (full-resolution grid). */
  private rectOf(p: PlaneName, box: { lo: Vec3; hi: Vec3 }): Rect | undefined {
    const meta = this.v.meta;
    if (!meta) return undefined;
    const d = planeDef(p, this.v.convention),
      n = meta.shape;
    const span = (axis: number, flip: boolean): [number, number] => {
      const a = Math.max(0, box.lo[axis]),
        b = Math.min(n[axis] - 1, box.hi[axis]);
      return flip ? [n[axis] - 1 - b, n[axis] - a] : [a, b + 1];
    };
    const [c0, c1] = span(d.col, d.colFlip),
      [r0, r1] = span(d.row, d.rowFlip);
    return c1 > c0 && r1 > r0 ? { c0, c1, r0, r1 } : undefined;
  }

  fitOf(p: PlaneName): { f: Fit; w: number; h: number } | null {
    const meta = this.v.meta;
    if (!meta) return null;
    const s = planeSize(p, meta.shape, meta.spacing);
    return { f: this.v.panes[p].fit(s.w, s.h, s.sx, s.sy), w: s.w, h: s.h };
  }

  private present(p: PlaneName): void {
    this.dirtyView.delete(p);
    const fw = this.fitOf(p);
    if (!fw) return;
    this.v.panes[p].present(fw.f, fw.w, fw.h);
  }

  private drawCrosshairs(): void {
    this.dirtyXhair = false;
    const v = this.v;
    const meta = v.meta;
    for (const p of PLANES) {
      if (!this.visible(p)) continue;
      const pane = v.panes[p];
      const fw = this.fitOf(p);
      if (!fw || !meta || !v.store.best("image")) {
        pane.drawCrosshair(null, null, "", "");
        continue;
      }
      const [u, w] = voxelToPlane(p, v.convention, meta.shape, v.cursor);
      const def = planeDef(p, v.convention);
      const byAxis = (a: number) => PLANE_COLORS[PLANES.find((q) => sliceAxis(q) === a)!];
      pane.drawCrosshair(fw.f.ox + u * fw.f.kx, fw.f.oy + w * fw.f.ky, byAxis(def.col), byAxis(def.row));
      v.ruler.draw(p, fw.f);
    }
  }

  /** Paint now (inside the input handler) and record input->frame latency at the next frame. */
  paintNow(planes: PlaneName[], eventTime: number | null): void {
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

  /** A brush stamp changed labels on `plane` (and, for a sphere, nearby slices): repaint the
   * plane now, the others at the next frame; record input->frame latency. */
  paintEdit(plane: PlaneName, eventTime: number, box?: { lo: Vec3; hi: Vec3 }): void {
    if (this.visible(plane)) {
      this.renderSlice(plane, box && this.rectOf(plane, box));
      this.present(plane);
    }
    // The other planes cross this slice along the crosshair lines; a sphere reaches further.
    for (const p of PLANES) {
      const a = sliceAxis(p),
        c = this.v.cursor[a];
      if (p === plane || (box && (c < box.lo[a] || c > box.hi[a]))) continue;
      this.dirtySlice.add(p);
      this.dirtyView.add(p);
    }
    this.requestRender();
    this.brushPaintLatencies.push(performance.now() - eventTime);
    this.pendingBrush.push(eventTime);
    if (!this.brushRaf) {
      this.brushRaf = requestAnimationFrame(() => {
        this.brushRaf = 0;
        const now = performance.now();
        for (const t of this.pendingBrush) this.brushLatencies.push(now - t);
        this.pendingBrush.length = 0;
      });
    }
  }

  dispose(): void {
    if (this.raf) cancelAnimationFrame(this.raf);
    if (this.latRaf) cancelAnimationFrame(this.latRaf);
    if (this.brushRaf) cancelAnimationFrame(this.brushRaf);
  }
}
