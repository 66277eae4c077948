// The view state in one place (cursor, window, preset, layout, convention, overlay, opacity,
// outline, hidden labels, 3D pane, active pane, 4-D frame) with change events. Writers call
// `set(patch, from)`; rendering, the toolbar (layout.ts), the model sync and the viewer's own
// derived state (LUT, colour table) subscribe to the keys they care about instead of being
// called one by one from every place that changes something. `from` says who changed it: "user"
// (input: the model sync writes it to the kernel), "model" (the kernel / host: not echoed back)
// or "local" (derived here, e.g. defaults: not written either).
import { PLANES, type Convention, type Layout, type OverlayMode, type PlaneName, type Vec3 } from "./types";

export interface ViewFields {
  cursor: Vec3;
  win: [number, number];
  preset: string;
  layout: Layout;
  convention: Convention;
  overlayMode: OverlayMode;
  opacity: number;
  outline: boolean;
  hidden: Set<number>;
  show3d: boolean;
  active: PlaneName;
  frame: number;
}

export type ViewKey = keyof ViewFields;
export type Origin = "user" | "model" | "local";
export interface ViewChange {
  keys: Set<ViewKey>;
  from: Origin;
}

type Listener = { keys: Set<ViewKey> | null; cb: (c: ViewChange) => void };

function same(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (a instanceof Set && b instanceof Set) return a.size === b.size && [...a].every((x) => b.has(x));
  if (Array.isArray(a) && Array.isArray(b)) return a.length === b.length && a.every((x, i) => x === b[i]);
  return false;
}

export class ViewState {
  readonly f: ViewFields = {
    cursor: [0, 0, 0],
    win: [400, 40],
    preset: "auto",
    layout: "three",
    convention: "radiological",
    overlayMode: "labels",
    opacity: 0.5,
    outline: false,
    hidden: new Set<number>(),
    show3d: true,
    active: PLANES[0],
    frame: 0,
  };
  private listeners: Listener[] = [];

  /** Call `cb` after changes of any of `keys` (all keys when null); returns the unsubscribe. */
  on(keys: ViewKey[] | null, cb: (c: ViewChange) => void): () => void {
    const l: Listener = { keys: keys ? new Set(keys) : null, cb };
    this.listeners.push(l);
    return () => {
      this.listeners = this.listeners.filter((x) => x !== l);
    };
  }

  /** Apply the values of `patch` that differ; listeners of the changed keys run once, in
   * subscription order. Returns whether anything changed. */
  set(patch: Partial<ViewFields>, from: Origin): boolean {
    const keys = new Set<ViewKey>();
    const f = this.f as unknown as Record<ViewKey, unknown>;
    for (const [k, value] of Object.entries(patch) as [ViewKey, unknown][]) {
      if (value === undefined || same(f[k], value)) continue;
      f[k] = value;
      keys.add(k);
    }
    if (!keys.size) return false;
    const change = { keys, from };
    for (const l of [...this.listeners]) {
      if (!l.keys || [...keys].some((k) => l.keys!.has(k))) l.cb(change);
    }
    return true;
  }
}
