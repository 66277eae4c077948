// The framed volume stream of `GET medai-lab/api/volume?path=` (docs/lab-api.md) and a small
// anywidget-style model that feeds it to the notebook viewer's render API.
//
// Frame: uint32 LE json_length | JSON (UTF-8) | uint32 LE payload_length | payload.
// The first frame is {"type": "state", ...initial traits}; then begin / chunk / end messages,
// exactly the widget's custom messages (medai_lab/widgets/PROTOCOL.md), a chunk's payload being
// its buffer.

export interface IFrame {
  message: any;
  payload: Uint8Array;
}

/** Incremental frame parser: push byte pieces as they arrive, take whole frames out. */
export class FrameParser {
  private pieces: Uint8Array[] = [];
  private head = 0; // read offset into pieces[0]
  private buffered = 0;
  private jsonLength = -1;
  private json: any = null;
  private payloadLength = -1;
  private readonly decoder = new TextDecoder();

  /** Bytes received but not yet part of a returned frame. */
  get pending(): number {
    return this.buffered;
  }

  push(bytes: Uint8Array): IFrame[] {
    if (bytes.byteLength) {
      this.pieces.push(bytes);
      this.buffered += bytes.byteLength;
    }
    const frames: IFrame[] = [];
    for (;;) {
      if (this.jsonLength < 0) {
        if (this.buffered < 4) break;
        this.jsonLength = this.readUint32();
      }
      if (this.json === null) {
        if (this.buffered < this.jsonLength) break;
        const text = this.decoder.decode(this.take(this.jsonLength));
        this.json = JSON.parse(text);
      }
      if (this.payloadLength < 0) {
        if (this.buffered < 4) break;
        this.payloadLength = this.readUint32();
      }
      if (this.buffered < this.payloadLength) break;
      frames.push({ message: this.json, payload: this.take(this.payloadLength) });
      this.jsonLength = -1;
      this.json = null;
      this.payloadLength = -1;
    }
    return frames;
  }

  private readUint32(): number {
    const b = this.take(4);
    return (b[0] | (b[1] << 8) | (b[2] << 16) | (b[3] << 24)) >>> 0;
  }

  /** Remove n buffered bytes (n <= buffered); no copy when they lie within one piece. */
  private take(n: number): Uint8Array {
    this.buffered -= n;
    const first = this.pieces[0];
    if (n === 0) return new Uint8Array(0);
    if (first.byteLength - this.head >= n) {
      const out = first.subarray(this.head, this.head + n);
      this.head += n;
      if (this.head === first.byteLength) {
        this.pieces.shift();
        this.head = 0;
      }
      return out;
    }
    const out = new Uint8Array(n);
    let filled = 0;
    while (filled < n) {
      const p = this.pieces[0];
      const k = Math.min(n - filled, p.byteLength - this.head);
      out.set(p.subarray(this.head, this.head + k), filled);
      filled += k;
      this.head += k;
      if (this.head === p.byteLength) {
        this.pieces.shift();
        this.head = 0;
      }
    }
    return out;
  }
}

type Callback = (...args: any[]) => void;

/**
 * The subset of the anywidget model the viewer uses (get/set/on/off/send/save_changes), backed by
 * a plain object. `set` emits `change:<name>` when the value changed (Backbone semantics, like
 * the notebook); `emitCustom` delivers a custom message as the kernel would.
 */
export class StreamModel {
  private traits: Record<string, unknown>;
  private listeners = new Map<string, Set<Callback>>();
  private readyHandler: (() => void) | null = null;

  constructor(traits: Record<string, unknown> = {}) {
    this.traits = { ...traits };
  }

  get(name: string): any {
    return this.traits[name];
  }

  set(name: string, value: unknown): void {
    const old = this.traits[name];
    this.traits[name] = value;
    if (!sameValue(old, value)) {
      this.emit(`change:${name}`, value);
    }
  }

  save_changes(): void {
    this.emit('saved');
  }

  on(event: string, cb: Callback): void {
    let set = this.listeners.get(event);
    if (!set) this.listeners.set(event, (set = new Set()));
    set.add(cb);
  }

  off(event?: string | null, cb?: Callback | null): void {
    if (!event) {
      this.listeners.clear();
    } else if (!cb) {
      this.listeners.delete(event);
    } else {
      this.listeners.get(event)?.delete(cb);
    }
  }

  /** Messages from the view; `{"type": "ready"}` is the only one the viewer sends. */
  send(content: any): void {
    if (content && content.type === 'ready' && this.readyHandler) {
      this.readyHandler();
    }
  }

  onReady(handler: (() => void) | null): void {
    this.readyHandler = handler;
  }

  emitCustom(message: unknown, buffers: unknown[] = []): void {
    this.emit('msg:custom', message, buffers);
  }

  private emit(event: string, ...args: unknown[]): void {
    for (const cb of [...(this.listeners.get(event) ?? [])]) {
      try {
        cb(...args);
      } catch (err) {
        console.error(`[medai-lab] ${event} handler failed`, err);
      }
    }
  }
}

function sameValue(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (typeof a !== 'object' || typeof b !== 'object' || a === null || b === null) return false;
  try {
    return JSON.stringify(a) === JSON.stringify(b);
  } catch {
    return false;
  }
}
