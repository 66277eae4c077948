// CPU ray caster for the "labels3d" volume: orthographic camera, first-hit surface of visible
// labels, normal from a smoothed occupancy gradient, headlight shading. No WebGL needed.
import type { Level, Vec3 } from "./types";

export interface Camera {
  az: number;
  el: number;
  zoom: number;
} // degrees

export interface Basis {
  right: Vec3;
  up: Vec3;
  fwd: Vec3;
}

/** Default (az=el=0): looking at the patient's front; patient right on screen left, superior up. */
export function cameraBasis(cam: Camera): Basis {
  const a = (cam.az * Math.PI) / 180,
    e = (cam.el * Math.PI) / 180;
  const ca = Math.cos(a),
    sa = Math.sin(a),
    ce = Math.cos(e),
    se = Math.sin(e);
  const rot = (v: Vec3): Vec3 => [v[0] * ca - v[1] * sa, v[0] * sa + v[1] * ca, v[2]];
  const right = rot([-1, 0, 0]);
  const f0 = rot([0, -1, 0]);
  const u0: Vec3 = [0, 0, 1];
  const fwd: Vec3 = [f0[0] * ce - u0[0] * se, f0[1] * ce - u0[1] * se, f0[2] * ce - u0[2] * se];
  const up: Vec3 = [u0[0] * ce + f0[0] * se, u0[1] * ce + f0[1] * se, u0[2] * ce + f0[2] * se];
  return { right, up, fwd };
}

const dot = (a: Vec3, b: Vec3) => a[0] * b[0] + a[1] * b[1] + a[2] * b[2];
function norm(v: Vec3): Vec3 {
  const l = Math.hypot(v[0], v[1], v[2]) || 1;
  return [v[0] / l, v[1] / l, v[2] / l];
}

export class RayCaster {
  private occ: Uint8Array | null = null;
  private lab: Level | null = null;
  private table: Uint32Array | null = null;
  dims: Vec3 = [1, 1, 1];
  sp: Vec3 = [1, 1, 1];
  visibleCount = 0;
  /** Tight box of visible voxels [lo, hi) per axis: rays only march inside it. */
  private lo: Vec3 = [0, 0, 0];
  private hi: Vec3 = [0, 0, 0];

  /** Volume + per-label packed colours (0 = hidden). Full-res spacing times level factor. */
  setVolume(lv: Level, fullSpacing: Vec3, table: Uint32Array): void {
    this.lab = lv;
    this.dims = [...lv.shape] as Vec3;
    this.sp = [0, 1, 2].map((a) => (fullSpacing[a] || 1) * (lv.factor[a] || 1)) as Vec3;
    this.setTable(table);
  }

  setTable(table: Uint32Array): void {
    this.table = table;
    const lv = this.lab;
    if (!lv) return;
    const src = lv.data,
      n = src.length;
    const occ = this.occ && this.occ.length === n ? this.occ : new Uint8Array(n);
    const [nx, ny, nz] = lv.shape;
    let count = 0,
      x0 = nx,
      y0 = ny,
      z0 = nz,
      x1 = -1,
      y1 = -1,
      z1 = -1;
    for (let z = 0, p = 0; z < nz; z++) {
      for (let y = 0; y < ny; y++) {
        for (let x = 0; x < nx; x++, p++) {
          const v = src[p];
          if (v !== 0 && table[v & 0xffff] !== 0) {
            occ[p] = 1;
            count++;
            if (x < x0) x0 = x;
            if (x > x1) x1 = x;
            if (y < y0) y0 = y;
            if (y > y1) y1 = y;
            if (z < z0) z0 = z;
            if (z > z1) z1 = z;
          } else occ[p] = 0;
        }
      }
    }
    this.occ = occ;
    this.visibleCount = count;
    this.lo = [x0, y0, z0];
    this.hi = [x1 + 1, y1 + 1, z1 + 1];
  }

  hasVolume(): boolean {
    return !!this.lab;
  }

  /** Ray cast into out32 (W x H, RGBA words). */
  render(out32: Uint32Array, W: number, H: number, cam: Camera): void {
    const bg = 0xff1a1410 >>> 0;
    out32.fill(bg);
    const occ = this.occ,
      lab = this.lab,
      table = this.table;
    if (!occ || !lab || !table || this.visibleCount === 0) return;
    const [nx, ny, nz] = this.dims;
    const [sx, sy, sz] = this.sp;
    const src = lab.data;
    const ex = nx * sx,
      ey = ny * sy,
      ez = nz * sz;
    const diag = Math.hypot(ex, ey, ez);
    const { right, up, fwd } = cameraBasis(cam);
    const ps = diag / Math.min(W, H) / (cam.zoom || 1);
    const dt = Math.min(sx, sy, sz) * 0.5;
    // Ray direction in voxel units per mm.
    const dqx = fwd[0] / sx,
      dqy = fwd[1] / sy,
      dqz = fwd[2] / sz;
    const L = norm([
      -fwd[0] + 0.35 * up[0] - 0.25 * right[0],
      -fwd[1] + 0.35 * up[1] - 0.25 * right[1],
      -fwd[2] + 0.35 * up[2] - 0.25 * right[2],
    ]);
    const V: Vec3 = [-fwd[0], -fwd[1], -fwd[2]];
    const Hh = norm([L[0] + V[0], L[1] + V[1], L[2] + V[2]]);
    const nxy = nx * ny;
    const at = (x: number, y: number, z: number) =>
      x < 0 || y < 0 || z < 0 || x >= nx || y >= ny || z >= nz ? 0 : occ[x + nx * y + nxy * z];
    const lo = this.lo,
      hi = this.hi,
      dq = [dqx, dqy, dqz];
    /** Trilinear occupancy at continuous voxel coordinates (voxel v covers [v, v+1)). */
    const tri = (x: number, y: number, z: number): number => {
      x -= 0.5;
      y -= 0.5;
      z -= 0.5;
      const x0 = Math.floor(x),
        y0 = Math.floor(y),
        z0 = Math.floor(z);
      const fx = x - x0,
        fy = y - y0,
        fz = z - z0;
      const c00 = at(x0, y0, z0) * (1 - fx) + at(x0 + 1, y0, z0) * fx;
      const c10 = at(x0, y0 + 1, z0) * (1 - fx) + at(x0 + 1, y0 + 1, z0) * fx;
      const c01 = at(x0, y0, z0 + 1) * (1 - fx) + at(x0 + 1, y0, z0 + 1) * fx;
      const c11 = at(x0, y0 + 1, z0 + 1) * (1 - fx) + at(x0 + 1, y0 + 1, z0 + 1) * fx;
      return (c00 * (1 - fy) + c10 * fy) * (1 - fz) + (c01 * (1 - fy) + c11 * fy) * fz;
    };
    const q = [0, 0, 0];
    for (let py = 0; py < H; py++) {
      const vy = (H / 2 - py - 0.5) * ps;
      for (let px = 0; px < W; px++) {
        const vx = (px + 0.5 - W / 2) * ps;
        // Ray start (mm, centred box) far in front of the volume, then voxel coordinates.
        const wx = vx * right[0] + vy * up[0] - diag * fwd[0];
        const wy = vx * right[1] + vy * up[1] - diag * fwd[1];
        const wz = vx * right[2] + vy * up[2] - diag * fwd[2];
        q[0] = (wx + ex / 2) / sx;
        q[1] = (wy + ey / 2) / sy;
        q[2] = (wz + ez / 2) / sz;
        let t0 = 0,
          t1 = Infinity,
          miss = false;
        for (let a = 0; a < 3; a++) {
          const d = dq[a];
          if (Math.abs(d) < 1e-12) {
            if (q[a] < lo[a] || q[a] > hi[a]) {
              miss = true;
              break;
            }
          } else {
            let ta = (lo[a] - q[a]) / d,
              tb = (hi[a] - q[a]) / d;
            if (ta > tb) {
              const tmp = ta;
              ta = tb;
              tb = tmp;
            }
            if (ta > t0) t0 = ta;
            if (tb < t1) t1 = tb;
          }
        }
        if (miss || t0 >= t1) continue;
        let hit = -1,
          hx = 0,
          hy = 0,
          hz = 0,
          tHit = 0;
        for (let t = t0 + dt * 0.5; t < t1; t += dt) {
          let ix = (q[0] + dqx * t) | 0,
            iy = (q[1] + dqy * t) | 0,
            iz = (q[2] + dqz * t) | 0;
          if (ix >= nx) ix = nx - 1;
          if (iy >= ny) iy = ny - 1;
          if (iz >= nz) iz = nz - 1;
          const idx = ix + nx * iy + nxy * iz;
          if (occ[idx]) {
            hit = idx;
            hx = ix;
            hy = iy;
            hz = iz;
            tHit = t;
            break;
          }
        }
        if (hit < 0) continue;
        // Refine with trilinear occupancy (iso 0.5) around the voxel hit for a smooth surface;
        // thin structures the trilinear field misses keep the voxel hit.
        let tx = -1;
        for (let t = tHit - dt; t <= tHit + dt; t += dt / 4) {
          if (tri(q[0] + dqx * t, q[1] + dqy * t, q[2] + dqz * t) >= 0.5) {
            tx = t;
            break;
          }
        }
        let n: Vec3;
        if (tx >= 0) {
          const x = q[0] + dqx * tx,
            y = q[1] + dqy * tx,
            z = q[2] + dqz * tx;
          n = [
            -(tri(x + 1, y, z) - tri(x - 1, y, z)) / sx,
            -(tri(x, y + 1, z) - tri(x, y - 1, z)) / sy,
            -(tri(x, y, z + 1) - tri(x, y, z - 1)) / sz,
          ];
        } else {
          // Smoothed central differences of the occupancy (3x3 neighbourhood per component).
          let gx = 0,
            gy = 0,
            gz = 0;
          for (let a = -1; a <= 1; a++) {
            for (let b = -1; b <= 1; b++) {
              gx += at(hx + 1, hy + a, hz + b) - at(hx - 1, hy + a, hz + b);
              gy += at(hx + a, hy + 1, hz + b) - at(hx + a, hy - 1, hz + b);
              gz += at(hx + a, hy + b, hz + 1) - at(hx + a, hy + b, hz - 1);
            }
          }
          n = [-gx / sx, -gy / sy, -gz / sz];
        }
        if (n[0] === 0 && n[1] === 0 && n[2] === 0) n = V;
        n = norm(n);
        const diff = Math.max(0, dot(n, L));
        const spec = Math.pow(Math.max(0, dot(n, Hh)), 24) * 70;
        const shade = 0.22 + 0.78 * diff;
        const c = table[src[hit] & 0xffff];
        const r = Math.min(255, (c & 0xff) * shade + spec) | 0;
        const g = Math.min(255, ((c >>> 8) & 0xff) * shade + spec) | 0;
        const bl = Math.min(255, ((c >>> 16) & 0xff) * shade + spec) | 0;
        out32[py * W + px] = (0xff000000 | (bl << 16) | (g << 8) | r) >>> 0;
      }
    }
  }

  /** Screen projection (unit-less, y down) of a world direction, for the orientation triad. */
  static project(cam: Camera, v: Vec3): [number, number] {
    const { right, up } = cameraBasis(cam);
    return [dot(v, right), -dot(v, up)];
  }
}
