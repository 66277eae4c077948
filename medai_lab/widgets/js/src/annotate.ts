// Annotation: paint / erase strokes on the label volume, undo / redo, the edit diffs sent to the
// kernel (edits.ts), and the editing traits. The label volume is the "labels" level 0 of the
// store; without labels from the kernel it starts empty here (nothing is transferred).
import { linePoints, paintStamp, type Stamp } from "./brush";
import { decodeRuns, editMessage, groupsOf, History, StrokeRecord, type Edit } from "./edits";
import { planeDef } from "./geometry";
import { syncLabels3d } from "./labels3d";
import { localLevel } from "./transport";
import { Proposal } from "./proposal";
import { fillHoles, interpolate } from "./smart";
import type { Level, PlaneName, Vec3 } from "./types";
import type { Viewer } from "./viewer";

export type Tool = "navigate" | "paint" | "erase" | "grow" | "assist" | "ruler";
export const TOOLS: Tool[] = ["navigate", "paint", "erase", "grow", "assist", "ruler"];

interface Stroke {
  plane: PlaneName;
  last: Vec3;
  rec: StrokeRecord;
  value: number;
}

export class Annotator {
  tool: Tool = "navigate";
  activeLabel = 1;
  brushRadius = 3; // mm
  brush3d = false;
  inWindow = false; // paint only voxels whose image value lies inside the window
  growTolerance = 100; // region grow: |value - seed value| <= this (HU for CT)
  history = new History();
  private stroke: Stroke | null = null;
  seq = 0; // edits sent
  acked = 0; // the kernel's edit_seq
  bytesSent = 0; // run buffers + JSON headers
  voxelsSent = 0;
  strokes = 0; // strokes finished (one that changed nothing sends nothing)
  readonly assist: Proposal; // model assistance (proposal.ts)

  constructor(readonly v: Viewer) {
    this.assist = new Proposal(this, v);
  }

  /** Forget the stroke, proposal and undo history (another image is shown). */
  reset(): void {
    this.stroke = null;
    this.assist.reset();
    this.history = new History();
  }

  /** The editable label level (full resolution), created empty when the kernel sent none. */
  labels(value = 0): Level | null {
    const v = this.v,
      meta = v.meta;
    if (!meta) return null;
    let lv = v.store.best("labels");
    if (lv && (lv.level !== 0 || lv.shape.some((s, a) => s !== meta.shape[a]))) return null;
    // Labels from the kernel still on their way: edits now would be overwritten by them.
    if (!lv && (meta.volumes ?? []).includes("labels")) return null;
    const wide = value > 255;
    if (!lv || (wide && lv.dtype === "uint8")) {
      const n = meta.shape[0] * meta.shape[1] * meta.shape[2];
      const data = wide ? new Uint16Array(n) : new Uint8Array(n);
      if (lv) data.set(lv.data as Uint8Array);
      lv = localLevel("labels", [...meta.shape] as Vec3, [1, 1, 1], data);
      v.store.putLocal(lv);
    }
    return lv;
  }

  setTool(t: Tool, save: boolean): void {
    if (!TOOLS.includes(t)) return;
    this.tool = t;
    if (t !== "navigate" && (this.v.overlayMode === "none" || this.v.overlayMode === "prediction")) {
      this.v.view.set({ overlayMode: "labels" }, "user");
    }
    if (save) this.v.sync.commit("tool", t, true);
    this.v.layoutUi.syncControls();
  }

  setLabel(value: number, save: boolean): void {
    if (!(value >= 1 && value <= 65535)) return;
    this.activeLabel = Math.round(value);
    if (save) this.v.sync.commit("active_label", this.activeLabel, true);
    this.v.layoutUi.syncControls();
  }

  setRadius(mm: number, save: boolean): void {
    this.brushRadius = Math.max(0, Math.min(200, Math.round(mm * 10) / 10));
    if (save) this.v.sync.commit("brush_radius", this.brushRadius, true);
    this.v.layoutUi.syncControls();
  }

  /** The image value at a flat full-resolution index (the best level loaded), or null. */
  imageAt(): ((flat: number) => number) | null {
    const v = this.v,
      img = v.store.best("image");
    if (!img || !v.meta) return null;
    const [nx, ny] = v.meta.shape,
      f = img.factor,
      s = img.shape,
      d = img.data;
    if (f.every((x) => x === 1)) return (i) => d[i];
    return (i) => {
      const x = Math.min(s[0] - 1, Math.floor((i % nx) / f[0]));
      const y = Math.min(s[1] - 1, Math.floor((Math.floor(i / nx) % ny) / f[1]));
      const z = Math.min(s[2] - 1, Math.floor(Math.floor(i / (nx * ny)) / f[2]));
      return d[x + s[0] * (y + s[1] * z)];
    };
  }

  /** The filter of threshold-within-window painting (null: every voxel). */
  windowFilter(): ((flat: number) => boolean) | null {
    const at = this.imageAt();
    if (!this.inWindow || this.tool === "erase" || !at) return null;
    const v = this.v,
      lo = v.win[1] - v.win[0] / 2,
      hi = v.win[1] + v.win[0] / 2;
    return (i) => {
      const x = at(i);
      return x >= lo && x <= hi;
    };
  }

  /** An edit the kernel made (Viewer.paint): apply it here as one undo step (not sent back). */
  onKernelEdit(msg: any, buffers: unknown[] | undefined): void {
    const meta = this.v.meta;
    if (!meta || !buffers || !buffers.length || !Array.isArray(msg.groups)) return;
    const runs = decodeRuns(buffers[0]);
    const st = [1, meta.shape[0], meta.shape[0] * meta.shape[1]][Number(msg.axis) || 0];
    let r = 0;
    for (const [value, count] of msg.groups as [number, number][]) {
      const lv = this.labels(value);
      if (!lv) return;
      const rec = new StrokeRecord(),
        d = lv.data;
      for (let e = 0; e < count; e++, r += 2)
        for (let t = 0; t < runs[r + 1]; t++) {
          const f = runs[r] + t * st;
          if (d[f] !== value) {
            rec.touch(f, d[f]);
            d[f] = value;
          }
        }
      const edit = rec.finish(value, 0);
      if (edit) {
        this.history.push(edit);
        syncLabels3d(this.v, edit.flat);
      }
    }
    this.v.render.markSlices();
    this.v.layoutUi.syncEditBar();
  }

  /** Set `flat` voxels to `value` as one recorded, sent edit. */
  commitVoxels(flat: number[], value: number, axis: 0 | 1 | 2): number {
    const lv = this.labels(value);
    if (!lv || !flat.length) return 0;
    const rec = new StrokeRecord(),
      d = lv.data;
    for (const f of flat)
      if (d[f] !== value) {
        rec.touch(f, d[f]);
        d[f] = value;
      }
    const edit = rec.finish(value, axis);
    if (!edit) return 0;
    this.history.push(edit);
    this.send(edit, false);
    this.v.render.markSlices();
    this.v.layoutUi.syncEditBar();
    return edit.flat.length;
  }

  /** Voxels a stamp at each of `centres` can reach (a box), for repainting only that. */
  private reach(centres: Vec3[]): { lo: Vec3; hi: Vec3 } {
    const sp = this.v.meta!.spacing;
    const lo: Vec3 = [Infinity, Infinity, Infinity],
      hi: Vec3 = [-Infinity, -Infinity, -Infinity];
    for (const c of centres)
      for (let a = 0; a < 3; a++) {
        const n = Math.floor(this.brushRadius / (sp[a] || 1));
        lo[a] = Math.min(lo[a], c[a] - n);
        hi[a] = Math.max(hi[a], c[a] + n);
      }
    return { lo, hi };
  }

  private stamp(st: Stroke, at: Vec3): void {
    const v = this.v,
      lv = this.labels(st.value)!;
    const def = planeDef(st.plane, v.convention);
    const s: Stamp = {
      centre: at,
      axes: [def.col, def.row, def.slice],
      radiusMm: this.brushRadius,
      sphere: this.brush3d,
      value: st.value,
    };
    paintStamp(lv.data, s, v.meta!.shape, v.meta!.spacing, st.rec, this.windowFilter());
  }

  /** Start a stroke at voxel `at` of `plane` (pointer down). */
  begin(plane: PlaneName, at: Vec3, eventTime: number): void {
    const value = this.tool === "erase" ? 0 : this.activeLabel;
    if (!this.labels(value)) return;
    this.stroke = { plane, last: at, rec: new StrokeRecord(), value };
    this.stamp(this.stroke, at);
    this.v.render.paintEdit(plane, eventTime, this.reach([at]));
  }

  /** Continue the stroke to `at`, stamping every voxel step of the way (pointer move). */
  move(at: Vec3, eventTime: number): void {
    const st = this.stroke;
    if (!st || (at[0] === st.last[0] && at[1] === st.last[1] && at[2] === st.last[2])) return;
    const path = linePoints(st.last, at);
    for (const p of path) this.stamp(st, p);
    st.last = at;
    this.v.render.paintEdit(st.plane, eventTime, this.reach(path));
  }

  /** End the stroke: record it for undo and send its diff (pointer up). */
  end(): void {
    const st = this.stroke;
    this.stroke = null;
    if (!st) return;
    this.strokes++;
    const def = planeDef(st.plane, this.v.convention);
    const edit = st.rec.finish(st.value, this.brush3d ? 0 : def.col);
    if (!edit) return;
    this.history.push(edit);
    this.send(edit, false);
    this.v.layoutUi.syncEditBar();
  }

  get painting(): boolean {
    return this.stroke !== null;
  }

  undo(): boolean {
    return this.replay(this.history.undo(), true);
  }

  redo(): boolean {
    return this.replay(this.history.redo(), false);
  }

  private replay(e: Edit | undefined, undo: boolean): boolean {
    const lv = e && this.labels(undo ? 0 : e.value);
    if (!e || !lv) return false;
    const d = lv.data;
    for (let n = 0; n < e.flat.length; n++) d[e.flat[n]] = undo ? e.old[n] : e.value;
    this.send(e, undo);
    this.v.render.markSlices();
    this.v.layoutUi.syncControls();
    return true;
  }

  private send(e: Edit, undo: boolean): void {
    const meta = this.v.meta!;
    const msg = editMessage(++this.seq, groupsOf(e, undo), meta.shape, e.axis);
    this.bytesSent += msg.buffer.byteLength + JSON.stringify(msg.content).length;
    this.voxelsSent += e.flat.length;
    this.v.sync.send(msg.content, [msg.buffer]);
    syncLabels3d(this.v, e.flat);
  }

  /** Keyboard shortcuts of the editing tools; true when the key was used. */
  onKey(e: KeyboardEvent): boolean {
    const k = e.key,
      mod = e.ctrlKey || e.metaKey;
    if (mod && (k === "z" || k === "Z")) {
      if (e.shiftKey) this.redo();
      else this.undo();
      return true;
    }
    if (mod && (k === "y" || k === "Y")) {
      this.redo();
      return true;
    }
    if (mod || e.altKey) return false;
    switch (k) {
      case "b":
        this.setTool("paint", true);
        return true;
      case "e":
        this.setTool("erase", true);
        return true;
      case "g":
        this.setTool("grow", true);
        return true;
      case "f":
        fillHoles(this);
        return true;
      case "i":
        interpolate(this);
        return true;
      case "m":
        this.setTool("ruler", true);
        return true;
      case "Escape":
        if (this.assist.preview) this.assist.reject();
        else this.setTool("navigate", true);
        return true;
      case "Enter":
        if (!this.assist.preview) return false;
        this.assist.accept();
        return true;
      case "n":
        this.setTool("navigate", true);
        return true;
      case "a":
        this.setTool("assist", true);
        return true;
      case "[":
        this.setRadius(this.brushRadius > 1 ? this.brushRadius / 1.25 : 0, true);
        return true;
      case "]":
        this.setRadius(Math.max(1, this.brushRadius * 1.25), true);
        return true;
      case "s":
        this.brush3d = !this.brush3d;
        this.v.sync.commit("brush_3d", this.brush3d, true);
        this.v.layoutUi.syncControls();
        return true;
      case "w":
        this.inWindow = !this.inWindow;
        this.v.sync.commit("brush_in_window", this.inWindow, true);
        this.v.layoutUi.syncControls();
        return true;
    }
    if (k.length === 1 && k >= "1" && k <= "9") {
      const d = this.v.dictionary()[Number(k) - 1];
      if (d) this.setLabel(d.value, true);
      return !!d;
    }
    return false;
  }

  state(): Record<string, unknown> {
    const [undo, redo] = this.history.sizes;
    return {
      tool: this.tool,
      active_label: this.activeLabel,
      brush_radius: this.brushRadius,
      brush_3d: this.brush3d,
      brush_in_window: this.inWindow,
      grow_tolerance: this.growTolerance,
      preview: this.assist.preview ? this.assist.preview.length : 0,
      proposals: this.assist.proposals,
      assist_error: this.assist.error || null,
      sent: this.seq,
      acked: this.acked,
      bytes_sent: this.bytesSent,
      voxels_sent: this.voxelsSent,
      strokes: this.strokes,
      undo,
      redo,
    };
  }
}
