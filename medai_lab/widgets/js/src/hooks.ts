// Test hooks (PROTOCOL.md "Test hooks"): root.medai and window.__medai_viewers.
import type { PlaneName, Vec3 } from "./types";

export interface HookSource {
  root: HTMLElement;
  state(): Record<string, unknown>;
  voxelToCanvas(plane: PlaneName | "3d", ijk: Vec3): [number, number] | null;
  sample(plane: PlaneName | "3d", ijk: Vec3): [number, number, number, number] | null;
  latencies: number[];
  paintLatencies: number[];
  brushLatencies: number[];
  brushPaintLatencies: number[];
  labelAt(ijk: Vec3): number | null;
  firstPaintMs: number | null;
  bytesReceived: number;
  paints: number;
  renders3d: number;
  render3dMs: number;
  whenLoaded(): Promise<void>;
}

declare global {
  interface Window {
    __medai_viewers?: unknown[];
  }
}

export function installHooks(src: HookSource): () => void {
  const api = {
    root: src.root,
    state: () => src.state(),
    voxelToCanvas: (plane: PlaneName | "3d", ijk: Vec3) => src.voxelToCanvas(plane, ijk),
    sample: (plane: PlaneName | "3d", ijk: Vec3) => src.sample(plane, ijk),
    whenLoaded: () => src.whenLoaded(),
    labelAt: (ijk: Vec3) => src.labelAt(ijk),
    get brushLatencies() {
      return src.brushLatencies;
    },
    get brushPaintLatencies() {
      return src.brushPaintLatencies;
    },
    get latencies() {
      return src.latencies;
    },
    get paintLatencies() {
      return src.paintLatencies;
    },
    get firstPaintMs() {
      return src.firstPaintMs;
    },
    get bytesReceived() {
      return src.bytesReceived;
    },
    get paints() {
      return src.paints;
    },
    get renders3d() {
      return src.renders3d;
    },
    get render3dMs() {
      return src.render3dMs;
    },
  };
  (src.root as any).medai = api;
  const list = (window.__medai_viewers = window.__medai_viewers || []);
  list.push(api);
  return () => {
    const i = list.indexOf(api);
    if (i >= 0) list.splice(i, 1);
    delete (src.root as any).medai;
  };
}
