// Label edits: run-length diffs sent to the kernel (PROTOCOL.md "Editing") and the undo/redo
// history. A run is [start, length]: `start` a flat index (i fastest), stepping along `axis`.
import { asBytes } from "./transport";
import type { Vec3 } from "./types";

/** A runs buffer (uint32 little-endian pairs) from a kernel message. */
export function decodeRuns(buffer: unknown): Uint32Array {
  const b = asBytes(buffer);
  return new Uint32Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength));
}

export function strides(shape: Vec3): Vec3 {
  return [1, shape[0], shape[0] * shape[1]];
}

/** Runs along `axis` covering the flat indices `flat` (any order, no duplicates). */
export function encodeRuns(flat: Uint32Array, shape: Vec3, axis: 0 | 1 | 2): Uint32Array {
  const n = flat.length;
  if (!n) return new Uint32Array(0);
  const st = strides(shape),
    nx = shape[0],
    nxy = shape[0] * shape[1];
  // Key with the run axis fastest, so that a sort puts each row's voxels next to each other.
  const others = ([0, 1, 2] as const).filter((a) => a !== axis);
  const len = shape[axis],
    m1 = shape[others[0]];
  const keys = new Float64Array(n);
  for (let e = 0; e < n; e++) {
    const f = flat[e];
    const c: number[] = [f % nx, Math.floor(f / nx) % shape[1], Math.floor(f / nxy)];
    keys[e] = c[axis] + len * (c[others[0]] + m1 * c[others[1]]);
  }
  keys.sort();
  const out: number[] = [];
  let start = -1,
    runLen = 0,
    prev = -2;
  for (let e = 0; e < n; e++) {
    const key = keys[e];
    const along = key % len;
    if (key === prev + 1 && along !== 0) {
      runLen++;
      prev = key;
      continue;
    }
    if (start >= 0) out.push(start, runLen);
    const rest = Math.floor(key / len);
    const c = [0, 0, 0];
    c[axis] = along;
    c[others[0]] = rest % m1;
    c[others[1]] = Math.floor(rest / m1);
    start = c[0] * st[0] + c[1] * st[1] + c[2] * st[2];
    runLen = 1;
    prev = key;
  }
  out.push(start, runLen);
  return Uint32Array.from(out);
}

/** One edit message: groups of flat indices set to a value. */
export interface EditMessage {
  content: { type: "edit"; seq: number; axis: number; groups: [number, number][] };
  buffer: ArrayBuffer;
}

export function editMessage(seq: number, groups: [number, Uint32Array][], shape: Vec3, axis: 0 | 1 | 2): EditMessage {
  const head: [number, number][] = [];
  const parts: Uint32Array[] = [];
  let total = 0;
  for (const [value, flat] of groups) {
    const runs = encodeRuns(flat, shape, axis);
    head.push([value, runs.length / 2]);
    parts.push(runs);
    total += runs.length;
  }
  const all = new Uint32Array(total);
  let o = 0;
  for (const p of parts) {
    all.set(p, o);
    o += p.length;
  }
  return { content: { type: "edit", seq, axis, groups: head }, buffer: all.buffer };
}

/** A finished stroke: the voxels it changed (sorted), their old values and the new value. */
export interface Edit {
  flat: Uint32Array;
  old: Uint16Array;
  value: number;
  axis: 0 | 1 | 2;
}

/** Changes of one stroke in progress: first old value per voxel touched. */
export class StrokeRecord {
  readonly old = new Map<number, number>();

  touch(idx: number, oldValue: number): void {
    if (!this.old.has(idx)) this.old.set(idx, oldValue);
  }

  finish(value: number, axis: 0 | 1 | 2): Edit | null {
    if (!this.old.size) return null;
    const flat = Uint32Array.from(this.old.keys()).sort();
    const old = new Uint16Array(flat.length);
    for (let e = 0; e < flat.length; e++) old[e] = this.old.get(flat[e])!;
    return { flat, old, value, axis };
  }
}

/** Group voxels by the value they get: one group for a redo, one per old value for an undo. */
export function groupsOf(e: Edit, undo: boolean): [number, Uint32Array][] {
  if (!undo) return [[e.value, e.flat]];
  const by = new Map<number, number[]>();
  for (let n = 0; n < e.flat.length; n++) {
    const v = e.old[n];
    let list = by.get(v);
    if (!list) by.set(v, (list = []));
    list.push(e.flat[n]);
  }
  return [...by.entries()].map(([v, l]) => [v, Uint32Array.from(l)]);
}

/** Undo/redo stacks (bounded: the oldest edits are dropped). */
export class History {
  private done: Edit[] = [];
  private undone: Edit[] = [];
  constructor(private limit = 200) {}

  push(e: Edit): void {
    this.done.push(e);
    if (this.done.length > this.limit) this.done.shift();
    this.undone.length = 0;
  }

  undo(): Edit | undefined {
    const e = this.done.pop();
    if (e) this.undone.push(e);
    return e;
  }

  redo(): Edit | undefined {
    const e = this.undone.pop();
    if (e) this.done.push(e);
    return e;
  }

  get sizes(): [number, number] {
    return [this.done.length, this.undone.length];
  }
}
