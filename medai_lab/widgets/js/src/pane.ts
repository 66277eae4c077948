// One 2D pane: image canvas (data-plane, image + overlay only), crosshair layer on top,
// orientation letters, slice label and slider. Holds its own zoom/pan.
import { fitPlane, letters, type Fit, type View } from "./geometry";
import type { Convention, PlaneName } from "./types";

export const PLANE_COLORS: Record<PlaneName, string> = {
  axial: "#f2c94c",
  coronal: "#56d364",
  sagittal: "#ff7b72",
};

function el<K extends keyof HTMLElementTagNameMap>(tag: K, cls: string, parent?: HTMLElement): HTMLElementTagNameMap[K] {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  if (parent) parent.appendChild(e);
  return e;
}

export class PlanePane {
  readonly root: HTMLDivElement;
  readonly canvas: HTMLCanvasElement;
  readonly xhair: HTMLCanvasElement;
  readonly slider: HTMLInputElement;
  private readonly label: HTMLDivElement;
  private readonly letterEls: Record<"left" | "right" | "top" | "bottom", HTMLDivElement>;
  private readonly ctx: CanvasRenderingContext2D;
  private readonly xctx: CanvasRenderingContext2D;
  /** Slice image at the displayed level's resolution. */
  private off: HTMLCanvasElement;
  private offCtx: CanvasRenderingContext2D;
  image: ImageData | null = null;
  out32: Uint32Array | null = null;
  ids: Int32Array | null = null;
  colors: Uint32Array | null = null;
  gt: Int32Array | null = null;
  pred: Int32Array | null = null;
  view: View = { zoom: 1, panX: 0, panY: 0 };
  cssW = 1;
  cssH = 1;
  dpr = 1;
  hasImage = false;

  constructor(readonly plane: PlaneName) {
    this.root = el("div", "mv-pane");
    this.root.dataset.pane = plane;
    const stage = el("div", "mv-stage", this.root);
    this.canvas = el("canvas", "mv-img", stage);
    this.canvas.dataset.plane = plane;
    this.xhair = el("canvas", "mv-xhair", stage);
    this.letterEls = {
      left: el("div", "mv-letter mv-left", stage),
      right: el("div", "mv-letter mv-right", stage),
      top: el("div", "mv-letter mv-top", stage),
      bottom: el("div", "mv-letter mv-bottom", stage),
    };
    this.label = el("div", "mv-plabel", stage);
    this.label.style.color = PLANE_COLORS[plane];
    this.slider = el("input", "mv-slider", this.root);
    this.slider.type = "range";
    this.slider.min = "0";
    this.slider.step = "1";
    this.slider.setAttribute("aria-label", `${plane} slice`);
    this.ctx = this.canvas.getContext("2d", { alpha: false })!;
    this.xctx = this.xhair.getContext("2d")!;
    this.off = document.createElement("canvas");
    this.offCtx = this.off.getContext("2d")!;
  }

  setLetters(conv: Convention): void {
    const l = letters(this.plane, conv);
    for (const k of ["left", "right", "top", "bottom"] as const) this.letterEls[k].textContent = l[k];
  }

  setLabel(text: string): void {
    this.label.textContent = text;
  }

  /** Returns true when the backing size changed. */
  resize(cssW: number, cssH: number, dpr: number): boolean {
    cssW = Math.max(1, Math.floor(cssW));
    cssH = Math.max(1, Math.floor(cssH));
    if (cssW === this.cssW && cssH === this.cssH && dpr === this.dpr) return false;
    this.cssW = cssW;
    this.cssH = cssH;
    this.dpr = dpr;
    for (const c of [this.canvas, this.xhair]) {
      c.width = Math.round(cssW * dpr);
      c.height = Math.round(cssH * dpr);
      c.style.width = `${cssW}px`;
      c.style.height = `${cssH}px`;
    }
    return true;
  }

  /** Buffers for a W x H slice grid (reallocated only when the grid changes). */
  ensureGrid(W: number, H: number): void {
    if (this.image && this.image.width === W && this.image.height === H) return;
    this.image = new ImageData(W, H);
    this.out32 = new Uint32Array(this.image.data.buffer);
    const n = W * H;
    this.ids = new Int32Array(n);
    this.colors = new Uint32Array(n);
    this.gt = new Int32Array(n);
    this.pred = new Int32Array(n);
    this.off.width = W;
    this.off.height = H;
  }

  /** Push the computed slice (or a rectangle of it) to the offscreen canvas. */
  commitSlice(rect?: { c0: number; c1: number; r0: number; r1: number }): void {
    if (!this.image) return;
    if (rect) this.offCtx.putImageData(this.image, 0, 0, rect.c0, rect.r0, rect.c1 - rect.c0, rect.r1 - rect.r0);
    else this.offCtx.putImageData(this.image, 0, 0);
    this.hasImage = true;
  }

  fit(w: number, h: number, sx: number, sy: number): Fit {
    return fitPlane(this.cssW, this.cssH, w, h, sx, sy, this.view);
  }

  /** Draw the offscreen slice into the visible canvas with the physical aspect, zoom and pan. */
  present(f: Fit, w: number, h: number): void {
    const ctx = this.ctx;
    ctx.setTransform(1, 0, 0, 1, 0, 0);
    ctx.fillStyle = "#000";
    ctx.fillRect(0, 0, this.canvas.width, this.canvas.height);
    if (!this.hasImage) return;
    ctx.setTransform(this.dpr, 0, 0, this.dpr, 0, 0);
    ctx.imageSmoothingEnabled = false;
    ctx.drawImage(this.off, 0, 0, this.off.width, this.off.height, f.ox, f.oy, w * f.kx, h * f.ky);
  }

  /** A measured segment (css px) with its text, on the crosshair layer (after drawCrosshair). */
  drawSegment(a: [number, number], b: [number, number], text: string): void {
    const c = this.xctx;
    c.setTransform(this.dpr, 0, 0, this.dpr, 0, 0);
    c.strokeStyle = c.fillStyle = "#4fc3f7";
    c.lineWidth = 1.5;
    c.beginPath();
    c.moveTo(a[0], a[1]);
    c.lineTo(b[0], b[1]);
    c.stroke();
    for (const [x, y] of [a, b]) c.fillRect(x - 2, y - 2, 4, 4);
    if (text) {
      c.font = "12px sans-serif";
      c.fillText(text, (a[0] + b[0]) / 2 + 6, (a[1] + b[1]) / 2 - 6);
    }
  }

  /** Crosshair lines through css point (x, y), on the layer above the image. */
  drawCrosshair(x: number | null, y: number | null, vColor: string, hColor: string): void {
    const c = this.xctx;
    c.setTransform(1, 0, 0, 1, 0, 0);
    c.clearRect(0, 0, this.xhair.width, this.xhair.height);
    if (x === null || y === null) return;
    c.setTransform(this.dpr, 0, 0, this.dpr, 0, 0);
    const gap = 6;
    c.lineWidth = 1;
    c.globalAlpha = 0.85;
    const X = Math.round(x) + 0.5,
      Y = Math.round(y) + 0.5;
    c.strokeStyle = vColor;
    c.beginPath();
    c.moveTo(X, 0);
    c.lineTo(X, Y - gap);
    c.moveTo(X, Y + gap);
    c.lineTo(X, this.cssH);
    c.stroke();
    c.strokeStyle = hColor;
    c.beginPath();
    c.moveTo(0, Y);
    c.lineTo(X - gap, Y);
    c.moveTo(X + gap, Y);
    c.lineTo(this.cssW, Y);
    c.stroke();
    c.globalAlpha = 1;
  }
}
