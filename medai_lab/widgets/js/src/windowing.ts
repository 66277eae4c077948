// Window/level presets and the grey lookup table (one pass per slice: LUT[value] -> RGBA).
import type { Dtype, Meta } from "./types";
// One table for the kernel (PNG fallback, traits) and the browser, bundled at build time.
import presetTable from "../../data/presets.json";

export const PRESETS: Record<string, [number, number]> = Object.fromEntries(
  Object.entries(presetTable as Record<string, unknown>).filter(([k]) => !k.startsWith("_")),
) as Record<string, [number, number]>;
/** Toolbar order: the data file's, then "auto". */
export const PRESET_NAMES = [...Object.keys(PRESETS), "auto"];

/** Window [width, level] for a preset name; null for "custom". */
export function presetWindow(name: string, meta: Meta | undefined): [number, number] | null {
  if (PRESETS[name]) return [...PRESETS[name]] as [number, number];
  if (name !== "auto") return null;
  // CT: soft tissue (the kernel's "auto" picks the same).
  if (meta && (meta.modality || "").toUpperCase() === "CT") return [...PRESETS.liver] as [number, number];
  const p = meta?.percentiles ?? meta?.range;
  if (p && p[1] > p[0]) return [p[1] - p[0], (p[0] + p[1]) / 2];
  return [400, 40];
}

const OPAQUE = 0xff000000;

/** Grey levels as little-endian RGBA words (0xAABBGGRR). */
function grey(g: number): number {
  return (OPAQUE | (g << 16) | (g << 8) | g) >>> 0;
}

export class Lut {
  /** Table indexed by the raw element bits (uint8 / uint16 view of the data), or null (float path). */
  table: Uint32Array | null = null;
  lo = 0;
  scale = 1;
  constructor(
    public dtype: Dtype,
    public width: number,
    public level: number,
  ) {
    const w = Math.max(width, 1e-6);
    this.lo = level - w / 2;
    this.scale = 255 / w;
    if (dtype === "int16" || dtype === "uint16") this.table = this.build(65536, dtype === "int16");
    else if (dtype === "uint8" || dtype === "int8") this.table = this.build(256, dtype === "int8");
  }

  private build(n: number, signed: boolean): Uint32Array {
    const t = new Uint32Array(n);
    const half = n >> 1;
    for (let u = 0; u < n; u++) {
      const v = signed && u >= half ? u - n : u;
      t[u] = grey(this.grey(v));
    }
    return t;
  }

  grey(v: number): number {
    const g = Math.round((v - this.lo) * this.scale);
    return g < 0 ? 0 : g > 255 ? 255 : g;
  }

  rgba(v: number): number {
    return grey(this.grey(v));
  }
}
