// The 3D pane: ray-cast labels3d at modest resolution, scaled into the pane, with an
// orientation triad. Rendered lazily: on load, rotate, visibility changes; never on slice moves.
import { RayCaster, type Camera } from "./raycast";
import type { Vec3 } from "./types";

export class Pane3D {
  readonly root: HTMLDivElement;
  readonly canvas: HTMLCanvasElement;
  readonly note: HTMLDivElement;
  readonly caster = new RayCaster();
  cam: Camera = { az: 0, el: 0, zoom: 1 };
  private off = document.createElement("canvas");
  private ctx: CanvasRenderingContext2D;
  private image: ImageData | null = null;
  cssW = 1;
  cssH = 1;
  dpr = 1;
  renders = 0;
  lastRenderMs = 0;

  constructor() {
    this.root = document.createElement("div");
    this.root.className = "mv-pane mv-pane3d";
    this.root.dataset.pane = "3d";
    const stage = document.createElement("div");
    stage.className = "mv-stage";
    this.root.appendChild(stage);
    this.canvas = document.createElement("canvas");
    this.canvas.className = "mv-img";
    this.canvas.dataset.plane = "3d";
    stage.appendChild(this.canvas);
    const lab = document.createElement("div");
    lab.className = "mv-plabel";
    lab.textContent = "3D labels · drag to rotate";
    stage.appendChild(lab);
    this.note = document.createElement("div");
    this.note.className = "mv-note";
    stage.appendChild(this.note);
    this.ctx = this.canvas.getContext("2d", { alpha: false })!;
  }

  resize(cssW: number, cssH: number, dpr: number): boolean {
    cssW = Math.max(1, Math.floor(cssW));
    cssH = Math.max(1, Math.floor(cssH));
    if (cssW === this.cssW && cssH === this.cssH && dpr === this.dpr) return false;
    this.cssW = cssW;
    this.cssH = cssH;
    this.dpr = dpr;
    this.canvas.width = Math.round(cssW * dpr);
    this.canvas.height = Math.round(cssH * dpr);
    this.canvas.style.width = `${cssW}px`;
    this.canvas.style.height = `${cssH}px`;
    return true;
  }

  /** Ray cast at most `maxPx` pixels on the long side, then present. */
  render(maxPx: number, enabled: boolean): void {
    const t0 = performance.now();
    const aspect = this.cssW / this.cssH;
    const W = Math.max(16, Math.round(aspect >= 1 ? maxPx : maxPx * aspect));
    const H = Math.max(16, Math.round(aspect >= 1 ? maxPx / aspect : maxPx));
    if (!this.image || this.image.width !== W || this.image.height !== H) {
      this.image = new ImageData(W, H);
      this.off.width = W;
      this.off.height = H;
    }
    const out32 = new Uint32Array(this.image.data.buffer);
    if (enabled) this.caster.render(out32, W, H, this.cam);
    else out32.fill(0xff1a1410);
    this.off.getContext("2d")!.putImageData(this.image, 0, 0);
    const c = this.ctx;
    c.setTransform(1, 0, 0, 1, 0, 0);
    c.imageSmoothingEnabled = true;
    c.drawImage(this.off, 0, 0, this.canvas.width, this.canvas.height);
    c.setTransform(this.dpr, 0, 0, this.dpr, 0, 0);
    if (enabled && this.caster.hasVolume()) this.drawTriad(c);
    this.note.textContent = !enabled
      ? "3D off"
      : !this.caster.hasVolume()
        ? "no labels for 3D"
        : this.caster.visibleCount === 0
          ? "all labels hidden"
          : "";
    this.renders++;
    this.lastRenderMs = performance.now() - t0;
  }

  private drawTriad(c: CanvasRenderingContext2D): void {
    const cx = 34,
      cy = this.cssH - 34,
      len = 22;
    const axes: [Vec3, string, string][] = [
      [[1, 0, 0], "R", "#ff7b72"],
      [[0, 1, 0], "A", "#56d364"],
      [[0, 0, 1], "S", "#79c0ff"],
    ];
    c.lineWidth = 2;
    c.font = "bold 11px sans-serif";
    c.textAlign = "center";
    c.textBaseline = "middle";
    for (const [v, name, col] of axes) {
      const [x, y] = RayCaster.project(this.cam, v);
      c.strokeStyle = col;
      c.fillStyle = col;
      c.beginPath();
      c.moveTo(cx, cy);
      c.lineTo(cx + x * len, cy + y * len);
      c.stroke();
      c.fillText(name, cx + x * (len + 9), cy + y * (len + 9));
    }
  }
}
