// Smart editing tools on the annotator's label volume, each one undo step sent as an edit:
// region grow from a click, fill holes, and interpolation between edited slices.
import type { Annotator } from "./annotate";
import { planeDef, sliceAxis } from "./geometry";
import { interpolateGaps } from "./interpolate";
import { flood, holes } from "./regions";
import type { PlaneName, Vec3 } from "./types";

const GROW_LIMIT_3D = 20_000_000; // voxels a 3D region grow may reach

/** Region grow from voxel `seed` of `plane`: connected voxels within the tolerance of the
 * seed's value (and the window, when in-window painting is on) that are unlabelled or
 * already this label; in the plane, or in 3D with the sphere option. One undo step. */
export function grow(a: Annotator, plane: PlaneName, seed: Vec3): number {
  const v = a.v,
    at = a.imageAt(),
    value = a.activeLabel,
    lv = a.labels(value);
  if (!at || !lv || !v.meta) return 0;
  const d = lv.data,
    s0 = at(seed[0] + v.meta.shape[0] * (seed[1] + v.meta.shape[1] * seed[2]));
  const tol = a.growTolerance,
    inWin = a.windowFilter();
  const ok = (f: number) => {
    const l = d[f];
    return (l === 0 || l === value) && Math.abs(at(f) - s0) <= tol && (!inWin || inWin(f));
  };
  const def = planeDef(plane, v.convention);
  const where = {
    axes: a.brush3d ? null : ([def.col, def.row, def.slice] as [0 | 1 | 2, 0 | 1 | 2, 0 | 1 | 2]),
    slice: seed[def.slice],
  };
  const n = v.meta.shape;
  const region = flood(seed, n, where, ok, a.brush3d ? GROW_LIMIT_3D : n[def.col] * n[def.row]);
  return a.commitVoxels(region, value, a.brush3d ? 0 : def.col);
}

/** Fill the holes of the active label on the active plane's slice (every slice of that
 * orientation with the sphere option): enclosed unlabelled voxels. One undo step. */
export function fillHoles(a: Annotator): number {
  const v = a.v,
    value = a.activeLabel,
    lv = a.labels(value);
  if (!lv || !v.meta) return 0;
  const p = v.active,
    def = planeDef(p, v.convention),
    ax = sliceAxis(p);
  const axes: [0 | 1 | 2, 0 | 1 | 2, 0 | 1 | 2] = [def.col, def.row, def.slice];
  const slices = a.brush3d ? [...Array(v.meta.shape[ax]).keys()] : [v.cursor[ax]];
  const found: number[] = [];
  for (const k of slices) for (const f of holes(lv.data, v.meta.shape, axes, k, value)) found.push(f);
  return a.commitVoxels(found, value, def.col);
}

/** Fill the gaps between slices of the active plane holding the active label (interpolate.ts). */
export function interpolate(a: Annotator): number {
  const v = a.v,
    value = a.activeLabel,
    lv = a.labels(value);
  if (!lv || !v.meta) return 0;
  const def = planeDef(v.active, v.convention);
  const found = interpolateGaps(lv.data, v.meta.shape, v.meta.spacing, [def.col, def.row, def.slice], value);
  return a.commitVoxels(found, value, def.col);
}
