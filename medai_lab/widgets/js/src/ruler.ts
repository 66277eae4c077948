// Distance ruler (tool "ruler", key M): two clicks on a plane give a segment between two voxel
// centres; its length in mm comes from the image affine (world = affine . [i, j, k, 1]). Drawn on
// the crosshair layer of its plane while that slice is shown, listed in the edit bar, and sent to
// the kernel as the whole list (viewer.measurements). Ctrl+Z / Ctrl+Shift+Z in the ruler tool undo
// and redo measurements (label edits keep their own history).
import { sliceAxis, voxelToPlane, type Fit } from "./geometry";
import type { PlaneName, Vec3 } from "./types";
import type { Viewer } from "./viewer";

export interface Measurement {
  plane: PlaneName;
  a: Vec3;
  b: Vec3;
  mm: number;
}

/** Distance in mm between voxel positions a and b under a 4x4 voxel-to-world affine. */
export function worldDistance(affine: number[][], a: Vec3, b: Vec3): number {
  let s = 0;
  for (let r = 0; r < 3; r++) {
    const d = affine[r][0] * (b[0] - a[0]) + affine[r][1] * (b[1] - a[1]) + affine[r][2] * (b[2] - a[2]);
    s += d * d;
  }
  return Math.sqrt(s);
}

export class Ruler {
  items: Measurement[] = [];
  private redoStack: Measurement[] = [];
  pending: { plane: PlaneName; a: Vec3 } | null = null;
  readonly text: HTMLSpanElement;

  constructor(private v: Viewer) {
    this.text = document.createElement("span");
    this.text.className = "mv-ptext";
    this.text.dataset.ruler = "";
    v.ui.edit.bar.appendChild(this.text);
  }

  /** A click of the ruler tool at voxel `at` of `plane`: first or second end of a segment. */
  click(plane: PlaneName, at: Vec3): void {
    const meta = this.v.meta;
    if (!meta) return;
    const p = this.pending;
    if (!p || p.plane !== plane || p.a[sliceAxis(plane)] !== at[sliceAxis(plane)]) {
      this.pending = { plane, a: at };
    } else {
      this.pending = null;
      this.items.push({ plane, a: p.a, b: at, mm: worldDistance(meta.affine, p.a, at) });
      this.redoStack = [];
      this.changed();
    }
    this.v.render.markView(plane);
  }

  undo(): boolean {
    const m = this.items.pop();
    if (m) {
      this.redoStack.push(m);
      this.changed();
    }
    return !!m;
  }

  redo(): boolean {
    const m = this.redoStack.pop();
    if (m) {
      this.items.push(m);
      this.changed();
    }
    return !!m;
  }

  clear(): void {
    this.items = [];
    this.redoStack = [];
    this.pending = null;
    this.changed();
  }

  /** Undo / redo keys while the ruler tool is on; true when used. */
  onKey(e: KeyboardEvent): boolean {
    if (this.v.annot.tool !== "ruler" || !(e.ctrlKey || e.metaKey)) return false;
    const k = e.key.toLowerCase();
    if (k === "z") return e.shiftKey ? this.redo() || true : this.undo() || true;
    if (k === "y") return this.redo() || true;
    return false;
  }

  private changed(): void {
    const last = this.items[this.items.length - 1];
    this.text.textContent = last ? `ruler ${last.mm.toFixed(1)} mm (${this.items.length})` : "";
    this.v.sync.send({ type: "measurements", items: this.items.map((m) => ({ ...m, kind: "distance" })) }, []);
    this.v.render.markSlices();
  }

  /** Segments (and a pending end) of `plane` on its shown slice, in css px of its pane. */
  draw(plane: PlaneName, f: Fit): void {
    const v = this.v,
      meta = v.meta;
    if (!meta) return;
    const ax = sliceAxis(plane),
      k = v.cursor[ax];
    const css = (ijk: Vec3): [number, number] => {
      const [u, w] = voxelToPlane(plane, v.convention, meta.shape, ijk);
      return [f.ox + u * f.kx, f.oy + w * f.ky];
    };
    for (const m of this.items)
      if (m.plane === plane && m.a[ax] === k) v.panes[plane].drawSegment(css(m.a), css(m.b), `${m.mm.toFixed(1)} mm`);
    const p = this.pending;
    if (p && p.plane === plane && p.a[ax] === k) v.panes[plane].drawSegment(css(p.a), css(p.a), "");
  }
}
