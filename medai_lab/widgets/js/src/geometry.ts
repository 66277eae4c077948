// Plane <-> voxel mapping, orientation letters and world coordinates (PROTOCOL.md "Geometry").
// Arrays are RAS+: i -> patient Right, j -> Anterior, k -> Superior.
import type { Convention, PlaneName, Vec3 } from "./types";

export interface PlaneDef {
  slice: 0 | 1 | 2; // axis through the plane
  col: 0 | 1 | 2; // axis along screen columns
  row: 0 | 1 | 2; // axis along screen rows
  colFlip: boolean; // column c -> index n-1-c
  rowFlip: boolean;
}

export function planeDef(p: PlaneName, conv: Convention): PlaneDef {
  const rad = conv !== "neurological";
  switch (p) {
    case "axial":
      return { slice: 2, col: 0, row: 1, colFlip: rad, rowFlip: true };
    case "coronal":
      return { slice: 1, col: 0, row: 2, colFlip: rad, rowFlip: true };
    default:
      return { slice: 0, col: 1, row: 2, colFlip: true, rowFlip: true };
  }
}

// Letter at the low / high end of each axis' index (index 0 is Left/Posterior/Inferior).
const LOW = ["L", "P", "I"],
  HIGH = ["R", "A", "S"];

export interface Letters {
  left: string;
  right: string;
  top: string;
  bottom: string;
}

export function letters(p: PlaneName, conv: Convention): Letters {
  const d = planeDef(p, conv);
  return {
    left: d.colFlip ? HIGH[d.col] : LOW[d.col],
    right: d.colFlip ? LOW[d.col] : HIGH[d.col],
    top: d.rowFlip ? HIGH[d.row] : LOW[d.row],
    bottom: d.rowFlip ? LOW[d.row] : HIGH[d.row],
  };
}

/** Plane size in full-resolution pixels [width, height] and pixel spacing [sx, sy] in mm. */
export function planeSize(p: PlaneName, shape: Vec3, spacing: Vec3): { w: number; h: number; sx: number; sy: number } {
  const d = planeDef(p, "radiological");
  return { w: shape[d.col], h: shape[d.row], sx: spacing[d.col] || 1, sy: spacing[d.row] || 1 };
}

/** Voxel centre -> continuous plane coordinates (u along columns, v along rows), full-res pixels. */
export function voxelToPlane(p: PlaneName, conv: Convention, shape: Vec3, ijk: Vec3): [number, number] {
  const d = planeDef(p, conv);
  const a = ijk[d.col],
    b = ijk[d.row];
  const u = d.colFlip ? shape[d.col] - 1 - a : a;
  const v = d.rowFlip ? shape[d.row] - 1 - b : b;
  return [u + 0.5, v + 0.5];
}

/** Continuous plane coordinates -> voxel index (clamped), keeping the plane's slice. */
export function planeToVoxel(p: PlaneName, conv: Convention, shape: Vec3, u: number, v: number, slice: number): Vec3 {
  const d = planeDef(p, conv);
  const cu = clamp(Math.floor(u), 0, shape[d.col] - 1);
  const cv = clamp(Math.floor(v), 0, shape[d.row] - 1);
  const out: Vec3 = [0, 0, 0];
  out[d.col] = d.colFlip ? shape[d.col] - 1 - cu : cu;
  out[d.row] = d.rowFlip ? shape[d.row] - 1 - cv : cv;
  out[d.slice] = slice;
  return out;
}

export function sliceAxis(p: PlaneName): 0 | 1 | 2 {
  return p === "axial" ? 2 : p === "coronal" ? 1 : 0;
}

/** World (RAS+ mm) position of voxel (i, j, k): affine @ [i, j, k, 1]. */
export function voxelToWorld(affine: number[][] | undefined, spacing: Vec3, ijk: Vec3): Vec3 {
  if (!affine || affine.length < 3) return [ijk[0] * spacing[0], ijk[1] * spacing[1], ijk[2] * spacing[2]];
  const r: Vec3 = [0, 0, 0];
  for (let a = 0; a < 3; a++) r[a] = affine[a][0] * ijk[0] + affine[a][1] * ijk[1] + affine[a][2] * ijk[2] + affine[a][3];
  return r;
}

export function clamp(x: number, lo: number, hi: number): number {
  return x < lo ? lo : x > hi ? hi : x;
}

/** Screen transform of a plane inside a pane: fit physical extent, then zoom and pan. */
export interface View {
  zoom: number;
  panX: number;
  panY: number;
}

export interface Fit {
  ox: number;
  oy: number;
  kx: number;
  ky: number;
} // css px = o + k * planeCoord

export function fitPlane(cssW: number, cssH: number, w: number, h: number, sx: number, sy: number, view: View): Fit {
  const s = Math.min(cssW / (w * sx), cssH / (h * sy)) * view.zoom;
  const kx = s * sx,
    ky = s * sy;
  return { kx, ky, ox: (cssW - w * kx) / 2 + view.panX, oy: (cssH - h * ky) / 2 + view.panY };
}
