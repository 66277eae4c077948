// Receives begin/chunk/end messages, decodes (deflate + byte un-shuffle) each chunk straight
// into one preallocated typed array per volume level, and reports progress/completion.
import type { Dtype, Level, TypedArr, Vec3 } from "./types";

const CTORS: Record<Dtype, { new (b: ArrayBuffer): TypedArr; BYTES_PER_ELEMENT: number }> = {
  int8: Int8Array,
  uint8: Uint8Array,
  int16: Int16Array,
  uint16: Uint16Array,
  int32: Int32Array,
  uint32: Uint32Array,
  float32: Float32Array,
  float64: Float64Array,
};

export function itemsize(dtype: Dtype): number {
  const c = CTORS[dtype];
  if (!c) throw new Error(`unsupported dtype ${dtype}`);
  return c.BYTES_PER_ELEMENT;
}

/** Buffers arrive as DataView, ArrayBuffer or another view: give a Uint8Array without copying. */
export function asBytes(b: unknown): Uint8Array {
  if (b instanceof Uint8Array) return b;
  if (b instanceof ArrayBuffer) return new Uint8Array(b);
  if (ArrayBuffer.isView(b)) return new Uint8Array(b.buffer, b.byteOffset, b.byteLength);
  throw new Error("chunk message without a binary buffer");
}

/** Inflate zlib-wrapped deflate data, handing out decoded pieces in order. */
async function inflate(src: Uint8Array, sink: (piece: Uint8Array, pos: number) => void): Promise<number> {
  const ds = new DecompressionStream("deflate");
  const writer = ds.writable.getWriter();
  writer.write(src as Uint8Array<ArrayBuffer>).catch(() => undefined);
  writer.close().catch(() => undefined);
  const reader = ds.readable.getReader();
  let pos = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    sink(value, pos);
    pos += value.length;
  }
  return pos;
}

/** Byte planes (all first bytes, all second bytes, ...) -> interleaved elements. */
export function unshuffle(src: Uint8Array, dst: Uint8Array, item: number): void {
  const n = src.length / item;
  if (item === 1) {
    dst.set(src);
    return;
  }
  if (item === 2 && dst.byteOffset % 2 === 0) {
    const d16 = new Uint16Array(dst.buffer, dst.byteOffset, n);
    for (let e = 0; e < n; e++) d16[e] = src[e] | (src[n + e] << 8);
    return;
  }
  if (item === 4 && dst.byteOffset % 4 === 0) {
    const d32 = new Uint32Array(dst.buffer, dst.byteOffset, n);
    const n2 = 2 * n,
      n3 = 3 * n;
    for (let e = 0; e < n; e++) d32[e] = (src[e] | (src[n + e] << 8) | (src[n2 + e] << 16) | (src[n3 + e] << 24)) >>> 0;
    return;
  }
  for (let b = 0; b < item; b++) {
    const base = b * n;
    for (let e = 0; e < n; e++) dst[e * item + b] = src[base + e];
  }
}

export interface StoreEvents {
  onProgress(): void;
  onLevelComplete(lv: Level): void;
  onError(message: string): void;
}

export class VolumeStore {
  /** volume name -> level number -> level (pending or complete). */
  readonly pending = new Map<string, Map<number, Level>>();
  /** volume name -> level number -> complete level. */
  readonly complete = new Map<string, Map<number, Level>>();
  wireBytes = 0;
  decodedBytes = 0;
  expectedBytes = 0;
  private queue: Promise<void> = Promise.resolve();

  constructor(private ev: StoreEvents) {}

  /** Make `lv` (made here: edited labels) the only complete level of its volume. */
  putLocal(lv: Level): void {
    let m = this.complete.get(lv.volume);
    if (!m) this.complete.set(lv.volume, (m = new Map()));
    m.clear();
    m.set(lv.level, lv);
  }

  /** Finest complete level of a volume, if any. */
  best(name: string): Level | undefined {
    const m = this.complete.get(name);
    if (!m || m.size === 0) return undefined;
    let best: Level | undefined;
    for (const lv of m.values()) if (!best || lv.level < best.level) best = lv;
    return best;
  }

  bestLevelNumber(name: string): number {
    const b = this.best(name);
    return b ? b.level : -1;
  }

  loading(): boolean {
    for (const m of this.pending.values()) if (m.size) return true;
    return false;
  }

  /** Forget volumes not in `keep`, or whose full shape no longer matches. */
  prune(keep: string[] | undefined, shape: Vec3 | undefined): void {
    for (const [name, m] of this.complete) {
      if (keep && !keep.includes(name)) {
        this.complete.delete(name);
        continue;
      }
      if (shape && name !== "labels3d") {
        for (const [L, lv] of m) {
          const full = lv.shape.map((s, a) => Math.round(s * lv.factor[a]));
          if (full.some((s, a) => Math.abs(s - shape[a]) > lv.factor[a])) m.delete(L);
        }
      }
    }
  }

  /** Entry point for msg:custom. Messages are processed strictly in order. */
  handle(msg: any, buffers: unknown[] | undefined): void {
    if (!msg || typeof msg !== "object") return;
    if (msg.type === "chunk") {
      const bytes = buffers && buffers.length ? asBytes(buffers[0]) : undefined;
      if (bytes) this.wireBytes += bytes.byteLength;
      this.enqueue(() => this.onChunk(msg, bytes));
    } else if (msg.type === "begin") {
      this.enqueue(async () => this.onBegin(msg));
    } else if (msg.type === "end") {
      this.enqueue(async () => this.onEnd(msg));
    }
  }

  private enqueue(fn: () => Promise<void>): void {
    this.queue = this.queue.then(fn).catch((e) => this.ev.onError(String(e && e.message ? e.message : e)));
  }

  private getPending(volume: string, level: number): Level | undefined {
    return this.pending.get(volume)?.get(level);
  }

  private onBegin(m: any): void {
    const dtype = m.dtype as Dtype;
    const item = itemsize(dtype);
    const shape = m.shape as Vec3;
    const n = shape[0] * shape[1] * shape[2];
    const nbytes = Number(m.nbytes ?? n * item);
    if (nbytes !== n * item) throw new Error(`begin ${m.volume}: nbytes ${nbytes} != shape*itemsize`);
    const buffer = new ArrayBuffer(nbytes);
    const lv: Level = {
      volume: String(m.volume),
      level: Number(m.level ?? 0),
      shape,
      factor: (m.factor as Vec3) ?? [1, 1, 1],
      dtype,
      nbytes,
      chunks: Number(m.chunks ?? 0),
      codec: m.codec === "raw" ? "raw" : "deflate",
      shuffle: !!m.shuffle,
      buffer,
      data: new CTORS[dtype](buffer),
      decodedChunks: 0,
      decodedBytes: 0,
      ended: false,
      complete: false,
    };
    let map = this.pending.get(lv.volume);
    if (!map) this.pending.set(lv.volume, (map = new Map()));
    const old = map.get(lv.level);
    if (old) this.expectedBytes -= old.nbytes - old.decodedBytes;
    map.set(lv.level, lv);
    this.expectedBytes += nbytes;
    this.ev.onProgress();
  }

  private async onChunk(m: any, bytes: Uint8Array | undefined): Promise<void> {
    const lv = this.getPending(String(m.volume), Number(m.level ?? 0));
    if (!lv) throw new Error(`chunk for ${m.volume} level ${m.level} without begin`);
    if (!bytes) throw new Error("chunk without buffer");
    const offset = Number(m.offset),
      size = Number(m.size);
    if (!(offset >= 0 && offset + size <= lv.nbytes)) throw new Error(`chunk out of range: ${offset}+${size}`);
    const target = new Uint8Array(lv.buffer, offset, size);
    const item = itemsize(lv.dtype);
    const shuffled = lv.shuffle && item > 1;
    // Without shuffle, decoded pieces go straight into the volume; with shuffle, through one
    // chunk-sized scratch buffer.
    const scratch = shuffled ? new Uint8Array(size) : target;
    let got: number;
    if (lv.codec === "deflate") {
      got = await inflate(bytes, (piece, pos) => {
        if (pos + piece.length > size) throw new Error("chunk decodes to more than its size");
        scratch.set(piece, pos);
      });
    } else {
      if (bytes.length > size) throw new Error("raw chunk larger than its size");
      scratch.set(bytes);
      got = bytes.length;
    }
    if (got !== size) throw new Error(`chunk ${m.index} of ${lv.volume}: ${got} bytes, expected ${size}`);
    if (shuffled) unshuffle(scratch, target, item);
    lv.decodedChunks++;
    lv.decodedBytes += size;
    this.decodedBytes += size;
    this.ev.onProgress();
  }

  private onEnd(m: any): void {
    const name = String(m.volume),
      L = Number(m.level ?? 0);
    const lv = this.getPending(name, L);
    if (!lv) return;
    lv.ended = true;
    this.pending.get(name)!.delete(L);
    if (lv.decodedBytes !== lv.nbytes) this.ev.onError(`${name} level ${L}: received ${lv.decodedBytes} of ${lv.nbytes} bytes`);
    lv.complete = true;
    let c = this.complete.get(name);
    if (!c) this.complete.set(name, (c = new Map()));
    c.set(L, lv);
    // A finer level makes coarser ones useless: free them.
    for (const k of [...c.keys()]) if (k > L) c.delete(k);
    this.ev.onLevelComplete(lv);
    this.ev.onProgress();
  }
}

/** A complete, uncompressed level 0 made in the browser (edited labels, previews). */
export function localLevel(volume: string, shape: Vec3, factor: Vec3, data: Uint8Array | Uint16Array): Level {
  const buffer = data.buffer as ArrayBuffer;
  return {
    volume,
    level: 0,
    shape,
    factor,
    dtype: data instanceof Uint16Array ? "uint16" : "uint8",
    nbytes: buffer.byteLength,
    chunks: 0,
    codec: "raw",
    shuffle: false,
    buffer,
    data,
    decodedChunks: 0,
    decodedBytes: buffer.byteLength,
    ended: true,
    complete: true,
  };
}
