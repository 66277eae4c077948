// Region tools on the label volume: region grow from a seed (flood fill over an intensity range)
// and hole filling, in a plane (4-connected) or in 3D (6-connected).
import type { Vec3 } from "./types";

/** Plane axes [column, row, slice] and the slice index; null axes mean the whole volume. */
export interface Where {
  axes: [0 | 1 | 2, 0 | 1 | 2, 0 | 1 | 2] | null;
  slice: number;
}

function strides(shape: Vec3): Vec3 {
  return [1, shape[0], shape[0] * shape[1]];
}

/** Flat indices connected to `seed` through voxels `ok` accepts (the seed must be ok), at most `limit`. */
export function flood(seed: Vec3, shape: Vec3, where: Where, ok: (flat: number) => boolean, limit: number): number[] {
  const st = strides(shape);
  const seedFlat = seed[0] + st[1] * seed[1] + st[2] * seed[2];
  if (!ok(seedFlat)) return [];
  // Index space: the plane (a + na * b) or the volume (flat).
  const ax = where.axes;
  const na = ax ? shape[ax[0]] : shape[0],
    nb = ax ? shape[ax[1]] : shape[1],
    nc = ax ? 1 : shape[2];
  const sa = ax ? st[ax[0]] : 1,
    sb = ax ? st[ax[1]] : st[1],
    base = ax ? where.slice * st[ax[2]] : 0;
  const seen = new Uint8Array(na * nb * nc);
  const toFlat = (q: number) => {
    const a = q % na,
      b = Math.floor(q / na) % nb,
      c = Math.floor(q / (na * nb));
    return base + a * sa + b * sb + c * st[2];
  };
  const q0 = ax ? seed[ax[0]] + na * seed[ax[1]] : seedFlat;
  const out: number[] = [];
  const stack = [q0];
  seen[q0] = 1;
  while (stack.length && out.length < limit) {
    const q = stack.pop()!;
    out.push(toFlat(q));
    const a = q % na,
      b = Math.floor(q / na) % nb,
      c = Math.floor(q / (na * nb));
    const next: number[] = [];
    if (a > 0) next.push(q - 1);
    if (a < na - 1) next.push(q + 1);
    if (b > 0) next.push(q - na);
    if (b < nb - 1) next.push(q + na);
    if (c > 0) next.push(q - na * nb);
    if (c < nc - 1) next.push(q + na * nb);
    for (const n of next) {
      if (seen[n]) continue;
      seen[n] = 1;
      if (ok(toFlat(n))) stack.push(n);
    }
  }
  return out;
}

/** Background voxels (label 0) of a plane enclosed by `value`: not reachable from the plane's
 * border without crossing a voxel labelled `value` (4-connected). */
export function holes(
  labels: ArrayLike<number>,
  shape: Vec3,
  axes: [0 | 1 | 2, 0 | 1 | 2, 0 | 1 | 2],
  slice: number,
  value: number,
): number[] {
  const st = strides(shape);
  const na = shape[axes[0]],
    nb = shape[axes[1]];
  const sa = st[axes[0]],
    sb = st[axes[1]],
    base = slice * st[axes[2]];
  const outside = new Uint8Array(na * nb);
  const stack: number[] = [];
  const open = (a: number, b: number) => labels[base + a * sa + b * sb] !== value;
  const push = (a: number, b: number) => {
    const q = a + na * b;
    if (!outside[q] && open(a, b)) {
      outside[q] = 1;
      stack.push(q);
    }
  };
  for (let a = 0; a < na; a++) {
    push(a, 0);
    push(a, nb - 1);
  }
  for (let b = 0; b < nb; b++) {
    push(0, b);
    push(na - 1, b);
  }
  while (stack.length) {
    const q = stack.pop()!;
    const a = q % na,
      b = (q - a) / na;
    if (a > 0) push(a - 1, b);
    if (a < na - 1) push(a + 1, b);
    if (b > 0) push(a, b - 1);
    if (b < nb - 1) push(a, b + 1);
  }
  const out: number[] = [];
  for (let b = 0; b < nb; b++)
    for (let a = 0; a < na; a++) {
      const f = base + a * sa + b * sb;
      if (!outside[a + na * b] && labels[f] === 0) out.push(f);
    }
  return out;
}
