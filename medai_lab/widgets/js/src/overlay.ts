// Label colours, visibility and overlay blending (filled or outline; labels, prediction, compare).
import type { LabelInfo } from "./types";

export const COMPARE_COLORS: Record<string, [number, number, number]> = {
  TP: [0, 200, 0],
  FP: [230, 40, 40],
  FN: [40, 120, 255],
};
export const TP = 1,
  FP = 2,
  FN = 3;

const FALLBACK: [number, number, number][] = [
  [230, 25, 75],
  [60, 180, 75],
  [255, 225, 25],
  [0, 130, 200],
  [245, 130, 48],
  [145, 30, 180],
  [70, 240, 240],
  [240, 50, 230],
  [210, 245, 60],
  [250, 190, 212],
  [0, 128, 128],
  [170, 110, 40],
];

export function labelColor(value: number, labels: LabelInfo[] | undefined): [number, number, number] {
  const l = labels?.find((x) => x.value === value);
  if (l && Array.isArray(l.color)) return [l.color[0] | 0, l.color[1] | 0, l.color[2] | 0];
  return FALLBACK[Math.abs(value) % FALLBACK.length];
}

export function labelName(value: number, labels: LabelInfo[] | undefined): string {
  return labels?.find((x) => x.value === value)?.name ?? `label ${value}`;
}

export function pack(c: [number, number, number]): number {
  return (0xff000000 | (c[2] << 16) | (c[1] << 8) | c[0]) >>> 0;
}

/** Packed colour per label value (0 = not drawn: background or hidden). Values are taken mod 65536. */
export function colorTable(labels: LabelInfo[] | undefined, hidden: Set<number>): Uint32Array {
  const t = new Uint32Array(65536);
  const fb = FALLBACK.map(pack);
  for (let v = 1; v < 65536; v++) t[v] = fb[v % fb.length];
  for (const l of labels ?? []) t[l.value & 0xffff] = pack(labelColor(l.value, labels));
  for (const h of hidden) t[h & 0xffff] = 0;
  t[0] = 0;
  return t;
}

/** Turn a labels (and optional prediction) slice into ids + colours in place; ids 0 = nothing. */
export function classify(
  mode: string,
  gt: Int32Array | null,
  pred: Int32Array | null,
  table: Uint32Array,
  ids: Int32Array,
  colors: Uint32Array,
  n: number,
): boolean {
  let any = false;
  if (mode === "compare") {
    const cTP = pack(COMPARE_COLORS.TP),
      cFP = pack(COMPARE_COLORS.FP),
      cFN = pack(COMPARE_COLORS.FN);
    for (let p = 0; p < n; p++) {
      const g = gt ? gt[p] : 0,
        q = pred ? pred[p] : 0;
      const gv = g !== 0 && table[g & 0xffff] !== 0,
        qv = q !== 0 && table[q & 0xffff] !== 0;
      let id = 0;
      if (gv && qv) id = g === q ? TP : FP;
      else if (qv) id = FP;
      else if (gv) id = FN;
      ids[p] = id;
      colors[p] = id === TP ? cTP : id === FP ? cFP : id === FN ? cFN : 0;
      if (id) any = true;
    }
  } else {
    const src = mode === "prediction" ? pred : gt;
    if (!src) return false;
    for (let p = 0; p < n; p++) {
      const v = src[p];
      const c = v !== 0 ? table[v & 0xffff] : 0;
      ids[p] = c ? v : 0;
      colors[p] = c;
      if (c) any = true;
    }
  }
  return any;
}

/** Blend colours over the grey image (grey, so the red byte is the grey level). */
export function blend(
  out32: Uint32Array,
  W: number,
  H: number,
  ids: Int32Array,
  colors: Uint32Array,
  opacity: number,
  outline: boolean,
): void {
  const alpha = outline ? Math.min(1, opacity * 1.6) : opacity;
  const a = Math.round(Math.max(0, Math.min(1, alpha)) * 256),
    ia = 256 - a;
  if (a === 0) return;
  for (let r = 0, p = 0; r < H; r++) {
    for (let c = 0; c < W; c++, p++) {
      const id = ids[p];
      if (!id) continue;
      if (outline) {
        const edge =
          c === 0 ||
          c === W - 1 ||
          r === 0 ||
          r === H - 1 ||
          ids[p - 1] !== id ||
          ids[p + 1] !== id ||
          ids[p - W] !== id ||
          ids[p + W] !== id;
        if (!edge) continue;
      }
      const col = colors[p];
      const g = out32[p] & 0xff;
      const R = (g * ia + (col & 0xff) * a) >> 8;
      const G = (g * ia + ((col >>> 8) & 0xff) * a) >> 8;
      const B = (g * ia + ((col >>> 16) & 0xff) * a) >> 8;
      out32[p] = (0xff000000 | (B << 16) | (G << 8) | R) >>> 0;
    }
  }
}
