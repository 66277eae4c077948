// Extract one slice of a volume level onto the output grid of the displayed image level:
// per-column and per-row element offsets, so a slice is two nested loops of adds and lookups.
import type { PlaneDef } from "./geometry";
import type { Level, Vec3 } from "./types";
import type { Lut } from "./windowing";

export interface SliceMaps {
  col: Int32Array;
  row: Int32Array;
  base: number;
}

/** A rectangle of output pixels, columns c0..c1-1, rows r0..r1-1 (an edit repaints only it). */
export interface Rect {
  c0: number;
  c1: number;
  r0: number;
  r1: number;
}

function full(m: SliceMaps, rect?: Rect): Rect {
  return rect ?? { c0: 0, c1: m.col.length, r0: 0, r1: m.row.length };
}

function strides(shape: Vec3): Vec3 {
  return [1, shape[0], shape[0] * shape[1]];
}

/** Output pixel a (on the grid level's axis) -> element offset along that axis in volume `vol`. */
function mapAxis(nOut: number, flip: boolean, fGrid: number, nFull: number, vol: Level, axis: number): Int32Array {
  const out = new Int32Array(nOut);
  const fv = vol.factor[axis] || 1,
    mv = vol.shape[axis],
    st = strides(vol.shape)[axis];
  const same = Math.abs(fv - fGrid) < 1e-9 && mv === nOut;
  for (let a = 0; a < nOut; a++) {
    const g = flip ? nOut - 1 - a : a;
    let idx: number;
    if (same) idx = g;
    else {
      const full = Math.min(nFull - 1, Math.floor(g * fGrid + fGrid / 2));
      idx = Math.min(mv - 1, Math.floor(full / fv));
    }
    out[a] = idx * st;
  }
  return out;
}

/** Maps for volume `vol` sampled on the grid of `grid` (the image level being displayed). */
export function sliceMaps(def: PlaneDef, full: Vec3, sliceFull: number, grid: Level, vol: Level): SliceMaps {
  const W = grid.shape[def.col],
    H = grid.shape[def.row];
  const col = mapAxis(W, def.colFlip, grid.factor[def.col] || 1, full[def.col], vol, def.col);
  const row = mapAxis(H, def.rowFlip, grid.factor[def.row] || 1, full[def.row], vol, def.row);
  const fs = vol.factor[def.slice] || 1;
  const s = Math.min(vol.shape[def.slice] - 1, Math.max(0, Math.floor(sliceFull / fs)));
  return { col, row, base: s * strides(vol.shape)[def.slice] };
}

/** Raw element view used to index the LUT (int16 is read through its uint16 bits). */
function rawView(lv: Level): ArrayLike<number> {
  switch (lv.dtype) {
    case "int16":
    case "uint16":
      return new Uint16Array(lv.buffer);
    case "int8":
    case "uint8":
      return new Uint8Array(lv.buffer);
    default:
      return lv.data;
  }
}

/** Grey pass: out32[p] = LUT[value]. */
export function renderGrey(out32: Uint32Array, m: SliceMaps, lv: Level, lut: Lut, rect?: Rect): void {
  const { col, row, base } = m;
  const W = col.length;
  const { c0, c1, r0, r1 } = full(m, rect);
  const t = lut.table;
  if (t) {
    const src = rawView(lv);
    for (let r = r0; r < r1; r++) {
      const b = base + row[r];
      let p = r * W + c0;
      for (let c = c0; c < c1; c++) out32[p++] = t[src[b + col[c]]];
    }
  } else {
    // Float (or wide integer) data: window arithmetic per pixel.
    const src = lv.data,
      lo = lut.lo,
      k = lut.scale;
    for (let r = r0; r < r1; r++) {
      const b = base + row[r];
      let p = r * W + c0;
      for (let c = c0; c < c1; c++) {
        let g = ((src[b + col[c]] - lo) * k + 0.5) | 0;
        g = g < 0 ? 0 : g > 255 ? 255 : g;
        out32[p++] = (0xff000000 | (g << 16) | (g << 8) | g) >>> 0;
      }
    }
  }
}

/** Copy a label slice into `dst` (W*H values). */
export function extractValues(dst: Int32Array, m: SliceMaps, lv: Level): void {
  const { col, row, base } = m;
  const W = col.length,
    H = row.length;
  const src = lv.data;
  let p = 0;
  for (let r = 0; r < H; r++) {
    const b = base + row[r];
    for (let c = 0; c < W; c++) dst[p++] = src[b + col[c]];
  }
}

function mix(px: number, col: number, a: number, ia: number): number {
  const g = px & 0xff; // grey underneath: R = G = B
  const R = (g * ia + (col & 0xff) * a) >> 8;
  const G = (g * ia + ((col >>> 8) & 0xff) * a) >> 8;
  const B = (g * ia + ((col >>> 16) & 0xff) * a) >> 8;
  return (0xff000000 | (B << 16) | (G << 8) | R) >>> 0;
}

/** Filled overlay in one pass: colour = table[label value] (0 = not drawn), alpha in 0..256. */
export function blendLabelsFilled(out32: Uint32Array, m: SliceMaps, lv: Level, table: Uint32Array, a: number, rect?: Rect): void {
  if (a <= 0) return;
  const { col, row, base } = m;
  const W = col.length,
    ia = 256 - a;
  const { c0, c1, r0, r1 } = full(m, rect);
  const src = lv.data;
  for (let r = r0; r < r1; r++) {
    const b = base + row[r];
    let p = r * W + c0;
    for (let c = c0; c < c1; c++, p++) {
      const v = src[b + col[c]];
      if (v === 0) continue;
      const k = table[v & 0xffff];
      if (k !== 0) out32[p] = mix(out32[p], k, a, ia);
    }
  }
}

/** Filled compare overlay in one pass (TP/FP/FN colours, hidden labels count as background). */
export function blendCompareFilled(
  out32: Uint32Array,
  mg: SliceMaps | null,
  gt: Level | null,
  mp: SliceMaps | null,
  pr: Level | null,
  table: Uint32Array,
  colors: [number, number, number],
  a: number,
  rect?: Rect,
): void {
  if (a <= 0) return;
  const ref = mg ?? mp;
  if (!ref) return;
  const W = ref.col.length,
    ia = 256 - a;
  const { c0, c1, r0, r1 } = full(ref, rect);
  const gs = gt ? gt.data : null,
    ps = pr ? pr.data : null;
  const [cTP, cFP, cFN] = colors;
  for (let r = r0; r < r1; r++) {
    const bg = mg ? mg.base + mg.row[r] : 0,
      bp = mp ? mp.base + mp.row[r] : 0;
    let p = r * W + c0;
    for (let c = c0; c < c1; c++, p++) {
      const g = gs ? gs[bg + mg!.col[c]] : 0,
        q = ps ? ps[bp + mp!.col[c]] : 0;
      if (g === 0 && q === 0) continue;
      const gv = g !== 0 && table[g & 0xffff] !== 0,
        qv = q !== 0 && table[q & 0xffff] !== 0;
      const k = gv && qv ? (g === q ? cTP : cFP) : qv ? cFP : gv ? cFN : 0;
      if (k !== 0) out32[p] = mix(out32[p], k, a, ia);
    }
  }
}
