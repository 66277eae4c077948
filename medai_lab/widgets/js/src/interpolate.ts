// Interpolation between edited slices, shape-based (Raya & Udupa): each labelled slice becomes a
// signed distance map (negative inside, in mm), the maps of two labelled slices with a gap between
// them are blended linearly along the slice axis, and a voxel of an in-between slice gets the
// label where the blend is negative. Done in the browser: the result shows at once and travels to
// the kernel as an ordinary edit diff (one undo step), like a brush stroke.
import type { TypedArr, Vec3 } from "./types";

const FAR = 1e20; // "no site" in the squared-distance transform (Infinity would give NaN)

/** 1-D squared distance transform (Felzenszwalb & Huttenlocher) of f[0..n) with sample step w
 * (mm): the lower envelope of the parabolas rooted at each sample. */
function edt1d(f: Float64Array, n: number, w: number, out: Float64Array, v: Int32Array, z: Float64Array): void {
  const meet = (q: number, p: number) => (f[q] + (q * w) ** 2 - (f[p] + (p * w) ** 2)) / (2 * w * (q - p));
  let k = 0;
  v[0] = 0;
  z[0] = -Infinity;
  z[1] = Infinity;
  for (let q = 1; q < n; q++) {
    let s = meet(q, v[k]);
    while (s <= z[k]) {
      k--;
      s = meet(q, v[k]);
    }
    k++;
    v[k] = q;
    z[k] = s;
    z[k + 1] = Infinity;
  }
  k = 0;
  for (let q = 0; q < n; q++) {
    while (z[k + 1] < q * w) k++;
    const d = (q - v[k]) * w;
    out[q] = d * d + f[v[k]];
  }
}

/** Squared Euclidean distance (mm^2) of every pixel of a W x H grid to the nearest site. */
export function sqDistance(site: Uint8Array, W: number, H: number, sw: number, sh: number): Float64Array {
  const g = new Float64Array(W * H);
  const n = Math.max(W, H);
  const f = new Float64Array(n),
    out = new Float64Array(n),
    v = new Int32Array(n),
    z = new Float64Array(n + 1);
  for (let y = 0; y < H; y++) {
    for (let x = 0; x < W; x++) f[x] = site[x + W * y] ? 0 : FAR;
    edt1d(f, W, sw, out, v, z);
    for (let x = 0; x < W; x++) g[x + W * y] = out[x];
  }
  for (let x = 0; x < W; x++) {
    for (let y = 0; y < H; y++) f[y] = g[x + W * y];
    edt1d(f, H, sh, out, v, z);
    for (let y = 0; y < H; y++) g[x + W * y] = out[y];
  }
  return g;
}

/** Signed distance (mm) of a binary mask: distance to the mask outside, minus the distance to
 * the background inside (so negative inside, never 0). */
export function signedDistance(mask: Uint8Array, W: number, H: number, sw: number, sh: number): Float64Array {
  const inv = new Uint8Array(mask.length);
  for (let i = 0; i < mask.length; i++) inv[i] = mask[i] ? 0 : 1;
  const dOut = sqDistance(mask, W, H, sw, sh),
    dIn = sqDistance(inv, W, H, sw, sh);
  const s = new Float64Array(mask.length);
  for (let i = 0; i < mask.length; i++) s[i] = Math.sqrt(dOut[i]) - Math.sqrt(dIn[i]);
  return s;
}

/** Flat indices to set to `value` so that every gap between two slices (along axes[2]) holding
 * `value` is filled by shape-based interpolation; only unlabelled voxels are taken. */
export function interpolateGaps(
  data: TypedArr,
  shape: Vec3,
  spacing: Vec3,
  axes: [number, number, number],
  value: number,
): number[] {
  const [cu, cv, cs] = axes,
    st = [1, shape[0], shape[0] * shape[1]];
  const W = shape[cu],
    H = shape[cv],
    K = shape[cs];
  const at = (u: number, w: number, k: number) => u * st[cu] + w * st[cv] + k * st[cs];
  const slice = (k: number): Uint8Array => {
    const m = new Uint8Array(W * H);
    for (let w = 0; w < H; w++) for (let u = 0; u < W; u++) if (data[at(u, w, k)] === value) m[u + W * w] = 1;
    return m;
  };
  const present: number[] = [];
  for (let k = 0; k < K; k++) {
    const m = slice(k);
    if (m.some((x) => x)) present.push(k);
  }
  const out: number[] = [];
  for (let n = 0; n + 1 < present.length; n++) {
    const k0 = present[n],
      k1 = present[n + 1];
    if (k1 - k0 < 2) continue;
    const a = signedDistance(slice(k0), W, H, spacing[cu], spacing[cv]);
    const b = signedDistance(slice(k1), W, H, spacing[cu], spacing[cv]);
    for (let k = k0 + 1; k < k1; k++) {
      const t = (k - k0) / (k1 - k0);
      for (let w = 0; w < H; w++)
        for (let u = 0; u < W; u++) {
          const i = u + W * w;
          if ((1 - t) * a[i] + t * b[i] < 0) {
            const f = at(u, w, k);
            if (data[f] === 0) out.push(f);
          }
        }
    }
  }
  return out;
}
