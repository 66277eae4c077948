// A tiny stand-in for the anywidget model (get/set/on/off/send/save_changes), plus a fake
// "kernel" that answers {"type":"ready"} by streaming volumes with the PROTOCOL.md messages.
export class FakeModel {
  constructor(traits) {
    this.traits = { ...traits };
    this.listeners = new Map();
    this.sent = [];
    this.saves = 0;
    this.saved = [];
    this.onReady = null;
  }
  get(k) { return this.traits[k]; }
  set(k, v) {
    const old = this.traits[k];
    this.traits[k] = v;
    if (JSON.stringify(old) !== JSON.stringify(v)) this.emit(`change:${k}`, v);
  }
  save_changes() { this.saves++; this.saved.push(JSON.parse(JSON.stringify(this.traits))); }
  on(ev, cb) {
    if (!this.listeners.has(ev)) this.listeners.set(ev, new Set());
    this.listeners.get(ev).add(cb);
  }
  off(ev, cb) {
    if (!ev) { this.listeners.clear(); return; }
    if (!cb) { this.listeners.delete(ev); return; }
    this.listeners.get(ev)?.delete(cb);
  }
  emit(ev, ...args) { for (const cb of [...(this.listeners.get(ev) ?? [])]) cb(...args); }
  send(content, _callbacks, buffers) {
    this.sent.push(content);
    if (content && content.type === "ready" && this.onReady) this.onReady(content, buffers);
  }
  /** What Python does: change a trait from the kernel side. */
  kernelSet(k, v) { this.set(k, v); }
}

async function deflate(bytes) {
  const cs = new CompressionStream("deflate");
  const w = cs.writable.getWriter();
  w.write(bytes);
  w.close();
  return new Uint8Array(await new Response(cs.readable).arrayBuffer());
}

function shuffleBytes(bytes, item) {
  if (item === 1) return bytes;
  const n = bytes.length / item, out = new Uint8Array(bytes.length);
  for (let e = 0; e < n; e++) for (let b = 0; b < item; b++) out[b * n + e] = bytes[e * item + b];
  return out;
}

const tick = () => new Promise((r) => setTimeout(r, 0));

/** Stream one volume level: begin, chunks (alternating DataView / ArrayBuffer buffers), end. */
export async function sendVolume(model, { volume, level, shape, factor, dtype, array, chunkBytes = 1 << 20, codec = "deflate", shuffle = true, delayMs = 0 }) {
  const item = array.BYTES_PER_ELEMENT;
  const all = new Uint8Array(array.buffer, array.byteOffset, array.byteLength);
  const per = Math.max(item, Math.floor(chunkBytes / item) * item);
  const chunks = Math.ceil(all.length / per);
  let wire = 0;
  model.emit("msg:custom", { type: "begin", volume, level, shape, factor, dtype, nbytes: all.length, chunks, codec, shuffle: shuffle && item > 1 });
  for (let n = 0; n < chunks; n++) {
    const part = all.subarray(n * per, Math.min(all.length, (n + 1) * per));
    let payload = shuffle && item > 1 ? shuffleBytes(part, item) : part.slice();
    if (codec === "deflate") payload = await deflate(payload);
    wire += payload.length;
    const buf = n % 2 ? payload.buffer : new DataView(payload.buffer, payload.byteOffset, payload.byteLength);
    model.emit("msg:custom", { type: "chunk", volume, level, index: n, offset: n * per, size: part.length }, [buf]);
    if (delayMs) await new Promise((r) => setTimeout(r, delayMs));
    else if (n % 4 === 3) await tick();
  }
  model.emit("msg:custom", { type: "end", volume, level });
  return wire;
}

/** Every f-th voxel (i fastest). */
export function downsample(src, shape, f, Ctor) {
  const [nx, ny, nz] = shape;
  const mx = Math.ceil(nx / f), my = Math.ceil(ny / f), mz = Math.ceil(nz / f);
  const out = new Ctor(mx * my * mz);
  let p = 0;
  for (let k = 0; k < mz; k++) for (let j = 0; j < my; j++) {
    const base = nx * (j * f + ny * k * f);
    for (let i = 0; i < mx; i++) out[p++] = src[base + i * f];
  }
  return { array: out, shape: [mx, my, mz] };
}

/**
 * Synthetic CT-like phantom in RAS+ index order (i -> patient Right, j -> Anterior, k -> Superior):
 * body ellipse, two lungs, spine posterior, a "liver" on the patient's RIGHT (label 1) and a bright
 * contrast blob on the patient's LEFT (label 2, "lesion").
 */
export function phantom(nx, ny, nz) {
  const img = new Int16Array(nx * ny * nz);
  const lab = new Uint8Array(nx * ny * nz);
  const pred = new Uint8Array(nx * ny * nz);
  const cx = nx / 2, cy = ny / 2;
  const ax = nx * 0.42, ay = ny * 0.32;
  for (let k = 0; k < nz; k++) {
    const z = k / nz;
    for (let j = 0; j < ny; j++) {
      for (let i = 0; i < nx; i++) {
        const p = i + nx * (j + ny * k);
        const dx = (i - cx) / ax, dy = (j - cy) / ay;
        let v = -1000;
        if (dx * dx + dy * dy < 1) {
          v = 40 + ((i * 7 + j * 13 + k * 3) % 17) - 8;
          // lungs in the upper half (superior), both sides
          for (const s of [-1, 1]) {
            const lx = (i - (cx + s * nx * 0.18)) / (nx * 0.12), ly = (j - cy - ny * 0.03) / (ny * 0.2);
            if (z > 0.55 && lx * lx + ly * ly < 1) v = -850;
          }
          // spine, posterior (low j)
          const sx = (i - cx) / (nx * 0.05), sy = (j - (cy - ay * 0.75)) / (ny * 0.05);
          if (sx * sx + sy * sy < 1) v = 700;
          // liver: patient's RIGHT (high i), lower half
          const hx = (i - (cx + nx * 0.2)) / (nx * 0.14), hy = (j - cy) / (ny * 0.17), hz = (z - 0.32) / 0.22;
          if (hx * hx + hy * hy + hz * hz < 1) { v = 60 + ((i + j) % 9); lab[p] = 1; }
          const px = (i - (cx + nx * 0.21)) / (nx * 0.14), pz = (z - 0.34) / 0.22;
          if (px * px + hy * hy + pz * pz < 1) pred[p] = 1;
          // bright contrast blob: patient's LEFT (low i)
          const bx = (i - (cx - nx * 0.22)) / (nx * 0.06), by = (j - (cy + ny * 0.05)) / (ny * 0.06), bz = (z - 0.35) / 0.08;
          if (bx * bx + by * by + bz * bz < 1) { v = 1200; lab[p] = 2; pred[p] = 2; }
        }
        img[p] = v;
      }
    }
  }
  return { img, lab, pred };
}
