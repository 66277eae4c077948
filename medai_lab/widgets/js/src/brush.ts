// Brush stamps on the label volume: a disc in a plane or a sphere, radius in mm.
import type { StrokeRecord } from "./edits";
import type { TypedArr, Vec3 } from "./types";

export interface Stamp {
  centre: Vec3; // voxel
  axes: [0 | 1 | 2, 0 | 1 | 2, 0 | 1 | 2]; // [col, row, slice] axes of the plane painted on
  radiusMm: number;
  sphere: boolean; // 3D ball instead of a disc on the slice
  value: number; // written value (0 erases)
}

/** Voxels within the brush: each `visit(flat)` once. A radius below one voxel paints the centre. */
export function forEachInBrush(s: Stamp, shape: Vec3, spacing: Vec3, visit: (flat: number) => void): void {
  const r = Math.max(0, s.radiusMm),
    r2 = r * r + 1e-6;
  const [ac, ar, as] = s.axes;
  const sc = spacing[ac] || 1,
    sr = spacing[ar] || 1,
    ss = spacing[as] || 1;
  const nc = Math.floor(r / sc),
    nr = Math.floor(r / sr),
    ns = s.sphere ? Math.floor(r / ss) : 0;
  const st = [1, shape[0], shape[0] * shape[1]];
  const c = s.centre;
  for (let ds = -ns; ds <= ns; ds++) {
    const zs = c[as] + ds;
    if (zs < 0 || zs >= shape[as]) continue;
    const es = (ds * ss) ** 2;
    for (let dr = -nr; dr <= nr; dr++) {
      const zr = c[ar] + dr;
      if (zr < 0 || zr >= shape[ar]) continue;
      const er = es + (dr * sr) ** 2;
      if (er > r2) continue;
      const base = zs * st[as] + zr * st[ar];
      for (let dc = -nc; dc <= nc; dc++) {
        const zc = c[ac] + dc;
        if (zc < 0 || zc >= shape[ac]) continue;
        if (er + (dc * sc) ** 2 > r2) continue;
        visit(base + zc * st[ac]);
      }
    }
  }
}

/** Paint one stamp into `data`, recording old values; `allow(flat)` may refuse a voxel. */
export function paintStamp(
  data: TypedArr,
  s: Stamp,
  shape: Vec3,
  spacing: Vec3,
  rec: StrokeRecord,
  allow: ((flat: number) => boolean) | null,
): number {
  let n = 0;
  forEachInBrush(s, shape, spacing, (f) => {
    const old = data[f];
    if (old === s.value || (allow && !allow(f))) return;
    rec.touch(f, old);
    data[f] = s.value;
    n++;
  });
  return n;
}

/** Voxel centres from `a` to `b` (inclusive of b, not a), one per voxel step: a stroke's path. */
export function linePoints(a: Vec3, b: Vec3): Vec3[] {
  const d = [b[0] - a[0], b[1] - a[1], b[2] - a[2]];
  const n = Math.max(Math.abs(d[0]), Math.abs(d[1]), Math.abs(d[2]));
  const out: Vec3[] = [];
  for (let t = 1; t <= n; t++) out.push([0, 1, 2].map((x) => Math.round(a[x] + (d[x] * t) / n)) as Vec3);
  return out;
}
