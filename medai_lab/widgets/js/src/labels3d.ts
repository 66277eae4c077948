// The 3D pane's coarse label volume ("labels3d") kept up to date with label edits.
import { localLevel } from "./transport";
import type { Vec3 } from "./types";
import type { Viewer } from "./viewer";

/** Bring the 3D pane's coarse label volume up to date with edited voxels (Python samples
 * every f-th voxel, f = ceil(n / 128) per axis; the same voxels are copied here). */
export function syncLabels3d(v: Viewer, flat: ArrayLike<number>): void {
  const meta = v.meta,
    lab = v.store.best("labels");
  if (!meta || !lab || lab.level !== 0) return;
  const n = meta.shape;
  let l3 = v.store.best("labels3d");
  const wide = lab.dtype === "uint16";
  if (!l3 || (wide && l3.dtype === "uint8")) {
    const f = n.map((x) => Math.max(1, Math.ceil(x / 128))) as Vec3;
    const shape = n.map((x, a) => Math.ceil(x / f[a])) as Vec3;
    const size = shape[0] * shape[1] * shape[2];
    const data = wide ? new Uint16Array(size) : new Uint8Array(size);
    for (let z = 0, p = 0; z < shape[2]; z++)
      for (let y = 0; y < shape[1]; y++)
        for (let x = 0; x < shape[0]; x++, p++) data[p] = lab.data[x * f[0] + n[0] * (y * f[1] + n[1] * z * f[2])];
    l3 = localLevel("labels3d", shape, f, data);
    v.store.putLocal(l3);
  } else {
    const f = l3.factor,
      s3 = l3.shape;
    for (let e = 0; e < flat.length; e++) {
      const q = flat[e],
        i = q % n[0],
        j = Math.floor(q / n[0]) % n[1],
        k = Math.floor(q / (n[0] * n[1]));
      if (i % f[0] || j % f[1] || k % f[2]) continue;
      l3.data[i / f[0] + s3[0] * (j / f[1] + s3[1] * (k / f[2]))] = lab.data[q];
    }
  }
  v.update3dVolume();
}
