// ROI statistics per label in the browser (the side panel's "Measure"): voxels, volume in mL and
// mean / SD / min / max of the image inside each label, as the kernel's Viewer.stats() computes.
import type { Level, Vec3 } from "./types";

export interface LabelStat {
  value: number;
  voxels: number;
  ml: number;
  mean: number;
  sd: number;
  min: number;
  max: number;
}

/** Statistics of every non-zero label of `lab` over `img` (both full resolution, same grid). */
export function labelStats(lab: Level, img: Level, spacing: Vec3): LabelStat[] {
  const l = lab.data,
    d = img.data,
    n = l.length;
  const acc = new Map<number, [number, number, number, number, number]>(); // n, sum, sum2, min, max
  for (let p = 0; p < n; p++) {
    const v = l[p];
    if (v === 0) continue;
    const x = d[p];
    const a = acc.get(v);
    if (a) {
      a[0]++;
      a[1] += x;
      a[2] += x * x;
      if (x < a[3]) a[3] = x;
      if (x > a[4]) a[4] = x;
    } else acc.set(v, [1, x, x * x, x, x]);
  }
  const voxelMl = (spacing[0] * spacing[1] * spacing[2]) / 1000;
  return [...acc.entries()]
    .sort((a, b) => a[0] - b[0])
    .map(([value, [c, s, s2, lo, hi]]) => {
      const mean = s / c;
      return { value, voxels: c, ml: c * voxelMl, mean, sd: Math.sqrt(Math.max(0, s2 / c - mean * mean)), min: lo, max: hi };
    });
}
