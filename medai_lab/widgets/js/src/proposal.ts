// Model-assisted proposals (tool "assist"): a click asks the kernel's model for a mask around it
// (PROTOCOL.md "Editing"); the answer is a preview until accepted (one undo step) or rejected.
import type { Annotator } from "./annotate";
import { decodeRuns } from "./edits";
import { localLevel } from "./transport";
import type { Level, Vec3 } from "./types";
import type { Viewer } from "./viewer";

export class Proposal {
  clicks: Vec3[] = []; // clicks of the current proposal
  private asked = 0;
  proposals = 0;
  error = "";
  preview: Uint32Array | null = null; // its voxels (flat indices) until accepted
  previewLevel: Level | null = null;

  constructor(
    private a: Annotator,
    private v: Viewer,
  ) {}

  reset(): void {
    this.preview = null;
    this.previewLevel = null;
    this.clicks = [];
  }

  /** Ask the kernel's model for a proposal around `at` (shift: add a click to the last ones). */
  ask(at: Vec3, add: boolean): void {
    this.clicks = add && this.preview ? [...this.clicks, at] : [at];
    this.error = "";
    this.v.sync.send({ type: "propose", id: ++this.asked, clicks: this.clicks }, []);
    this.v.layoutUi.syncEditBar();
  }

  /** A proposal (or an error) from the kernel: show it as the preview. */
  onProposal(msg: any, buffers: unknown[] | undefined): void {
    if (Number(msg.id) !== this.asked) return; // an older click's answer
    this.clear();
    if (msg.error) {
      this.error = String(msg.error);
      this.v.layoutUi.syncEditBar();
      return;
    }
    const meta = this.v.meta;
    if (!meta || !buffers || !buffers.length) return;
    const runs = decodeRuns(buffers[0]);
    const st = [1, meta.shape[0], meta.shape[0] * meta.shape[1]][Number(msg.axis) || 0];
    let n = 0;
    for (let r = 1; r < runs.length; r += 2) n += runs[r];
    const flat = new Uint32Array(n);
    for (let r = 0, o = 0; r < runs.length; r += 2) for (let t = 0; t < runs[r + 1]; t++) flat[o++] = runs[r] + t * st;
    let lv = this.previewLevel;
    if (!lv) {
      const size = meta.shape[0] * meta.shape[1] * meta.shape[2];
      lv = this.previewLevel = localLevel("preview", [...meta.shape] as Vec3, [1, 1, 1], new Uint8Array(size));
    }
    for (const f of flat) lv.data[f] = 1;
    this.preview = flat;
    this.proposals++;
    this.v.render.markSlices();
    this.v.layoutUi.syncEditBar();
  }

  clear(): void {
    if (this.preview && this.previewLevel) for (const f of this.preview) this.previewLevel.data[f] = 0;
    this.preview = null;
    this.v.render.markSlices();
  }

  /** Accept the preview: its voxels that are unlabelled or this label get the active label. */
  accept(): number {
    const p = this.preview,
      lv = this.a.labels(this.a.activeLabel);
    if (!p || !lv) return 0;
    const value = this.a.activeLabel,
      d = lv.data;
    const take: number[] = [];
    for (const f of p) if (d[f] === 0 || d[f] === value) take.push(f);
    this.clear();
    this.clicks = [];
    return this.a.commitVoxels(take, value, 0);
  }

  reject(): void {
    this.clear();
    this.clicks = [];
    this.v.layoutUi.syncEditBar();
  }
}
