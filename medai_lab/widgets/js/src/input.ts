// Input handling: keyboard, wheel and pointer drags on the plane panes (slice, zoom, pan,
// window/level, click-to-cursor) and on the 3D pane (orbit, zoom).
import { clamp, planeToVoxel, sliceAxis } from "./geometry";
import { grow } from "./smart";
import { PLANES, type PlaneName, type Vec3 } from "./types";
import type { Viewer } from "./viewer";

type Drag =
  | { kind: "cursor"; plane: PlaneName; id: number }
  | { kind: "paint"; plane: PlaneName; id: number }
  | { kind: "pan"; plane: PlaneName; id: number; x: number; y: number }
  | { kind: "wl"; plane: PlaneName; id: number; x: number; y: number; w: number; l: number }
  | { kind: "rotate"; id: number; x: number; y: number; az: number; el: number };

export class InputHandler {
  private drag: Drag | null = null;

  constructor(private v: Viewer) {}

  /** Attach all listeners (removed through the viewer's disposers). */
  bind(): void {
    for (const p of PLANES) this.bindPane(p);
    this.bind3d();
    this.bindKeys();
  }

  private canvasPoint(p: PlaneName, e: { clientX: number; clientY: number }): [number, number] {
    const r = this.v.panes[p].canvas.getBoundingClientRect();
    return [e.clientX - r.left, e.clientY - r.top];
  }

  private cursorFromPoint(p: PlaneName, x: number, y: number): Vec3 | null {
    const v = this.v;
    const fw = v.render.fitOf(p);
    if (!fw || !v.meta) return null;
    const u = (x - fw.f.ox) / fw.f.kx,
      w = (y - fw.f.oy) / fw.f.ky;
    return planeToVoxel(p, v.convention, v.meta.shape, u, w, v.cursor[sliceAxis(p)]);
  }

  private zoomAt(p: PlaneName, factor: number, x: number, y: number): void {
    const r = this.v.render;
    const pane = this.v.panes[p];
    const before = r.fitOf(p);
    if (!before) return;
    const u = (x - before.f.ox) / before.f.kx,
      w = (y - before.f.oy) / before.f.ky;
    pane.view.zoom = clamp(pane.view.zoom * factor, 0.25, 40);
    const after = r.fitOf(p)!;
    pane.view.panX += x - (after.f.ox + u * after.f.kx);
    pane.view.panY += y - (after.f.oy + w * after.f.ky);
    r.markView(p);
  }

  private setActive(p: PlaneName): void {
    this.v.view.set({ active: p }, "local");
  }

  private bindPane(p: PlaneName): void {
    const v = this.v,
      r = v.render;
    const pane = v.panes[p];
    const c = pane.canvas;
    const listen = <K extends keyof HTMLElementEventMap>(
      t: HTMLElement,
      ev: K,
      fn: (e: HTMLElementEventMap[K]) => void,
      opts?: AddEventListenerOptions,
    ) => {
      t.addEventListener(ev, fn as EventListener, opts);
      v.disposers.push(() => t.removeEventListener(ev, fn as EventListener, opts));
    };
    listen(c, "contextmenu", (e) => e.preventDefault());
    listen(c, "pointerenter", () => this.setActive(p));
    listen(c, "pointerdown", (e) => {
      this.setActive(p);
      v.root.focus({ preventScroll: true });
      const [x, y] = this.canvasPoint(p, e);
      if (e.button === 2) {
        this.drag = { kind: "wl", plane: p, id: e.pointerId, x, y, w: v.win[0], l: v.win[1] };
      } else if (e.button === 1 || (e.button === 0 && e.shiftKey)) {
        this.drag = { kind: "pan", plane: p, id: e.pointerId, x, y };
      } else if (e.button === 0 && v.annot.tool === "grow") {
        const at = this.cursorFromPoint(p, x, y);
        if (at) grow(v.annot, p, at);
        return;
      } else if (e.button === 0 && v.annot.tool === "ruler") {
        const at = this.cursorFromPoint(p, x, y);
        if (at) v.ruler.click(p, at);
        return;
      } else if (e.button === 0 && v.annot.tool === "assist" && !e.shiftKey) {
        const at = this.cursorFromPoint(p, x, y);
        if (at) v.annot.assist.ask(at, e.altKey);
        return;
      } else if (e.button === 0 && v.annot.tool !== "navigate") {
        const at = this.cursorFromPoint(p, x, y);
        if (!at) return;
        this.drag = { kind: "paint", plane: p, id: e.pointerId };
        v.annot.begin(p, at, e.timeStamp);
      } else if (e.button === 0) {
        this.drag = { kind: "cursor", plane: p, id: e.pointerId };
        const cur = this.cursorFromPoint(p, x, y);
        if (cur) v.setCursor(cur, null, true);
        v.layoutUi.updateInfo();
      } else return;
      e.preventDefault();
      try {
        c.setPointerCapture(e.pointerId);
      } catch {
        /* synthetic events */
      }
    });
    listen(c, "pointermove", (e) => {
      const d = this.drag;
      if (!d || d.kind === "rotate" || d.plane !== p || d.id !== e.pointerId) return;
      const [x, y] = this.canvasPoint(p, e);
      if (d.kind === "paint") {
        const at = this.cursorFromPoint(p, x, y);
        if (at) v.annot.move(at, e.timeStamp);
      } else if (d.kind === "cursor") {
        const cur = this.cursorFromPoint(p, x, y);
        if (cur) v.setCursor(cur, null, true);
      } else if (d.kind === "pan") {
        pane.view.panX += x - d.x;
        pane.view.panY += y - d.y;
        d.x = x;
        d.y = y;
        r.markView(p);
      } else if (d.kind === "wl") {
        const range = v.meta?.range ?? [0, 1000];
        const span = Math.max(1e-6, range[1] - range[0]);
        const s = v.lut && v.lut.table ? Math.max(1, span / 600) : span / 600;
        const w = Math.max(1, d.w + (x - d.x) * s),
          l = d.l - (y - d.y) * s;
        v.setWindow(v.lut && v.lut.table ? [Math.round(w), Math.round(l)] : [w, l]);
      }
    });
    const end = (e: PointerEvent) => {
      if (this.drag && this.drag.kind !== "rotate" && this.drag.id === e.pointerId) {
        if (this.drag.kind === "paint") v.annot.end();
        this.drag = null;
      }
    };
    listen(c, "pointerup", end);
    listen(c, "pointercancel", end);
    listen(c, "dblclick", () => {
      pane.view = { zoom: 1, panX: 0, panY: 0 };
      r.markView(p);
    });
    listen(
      c,
      "wheel",
      (e) => {
        e.preventDefault();
        e.stopPropagation();
        this.setActive(p);
        if (e.ctrlKey || e.metaKey) {
          const [x, y] = this.canvasPoint(p, e);
          this.zoomAt(p, Math.exp(-e.deltaY * 0.0015), x, y);
        } else if (e.deltaY !== 0) {
          v.step(p, e.deltaY < 0 ? 1 : -1, e.timeStamp);
        }
      },
      { passive: false },
    );
    listen(pane.slider, "input", (e) => {
      if (!v.meta) return;
      const a = sliceAxis(p);
      const cur = [...v.cursor] as Vec3;
      cur[a] = clamp(Number(pane.slider.value), 0, v.meta.shape[a] - 1);
      this.setActive(p);
      v.setCursor(cur, e.timeStamp, true);
    });
  }

  private bind3d(): void {
    const v = this.v,
      r = v.render;
    const c = v.pane3d.canvas;
    const add = (ev: string, fn: (e: any) => void, opts?: AddEventListenerOptions) => {
      c.addEventListener(ev, fn, opts);
      v.disposers.push(() => c.removeEventListener(ev, fn, opts));
    };
    add("contextmenu", (e: Event) => e.preventDefault());
    add("pointerdown", (e: PointerEvent) => {
      this.drag = { kind: "rotate", id: e.pointerId, x: e.clientX, y: e.clientY, az: v.pane3d.cam.az, el: v.pane3d.cam.el };
      r.dragging3d = true;
      try {
        c.setPointerCapture(e.pointerId);
      } catch {
        /* synthetic */
      }
      e.preventDefault();
    });
    add("pointermove", (e: PointerEvent) => {
      const d = this.drag;
      if (!d || d.kind !== "rotate" || d.id !== e.pointerId) return;
      v.pane3d.cam.az = d.az + (e.clientX - d.x) * 0.5;
      v.pane3d.cam.el = clamp(d.el + (e.clientY - d.y) * 0.5, -89, 89);
      r.mark3d();
    });
    const end = (e: PointerEvent) => {
      if (this.drag && this.drag.kind === "rotate" && this.drag.id === e.pointerId) {
        this.drag = null;
        r.dragging3d = false;
        r.mark3d(); // full-resolution frame
      }
    };
    add("pointerup", end);
    add("pointercancel", end);
    add(
      "wheel",
      (e: WheelEvent) => {
        e.preventDefault();
        const cam = v.pane3d.cam;
        cam.zoom = clamp(cam.zoom * Math.exp(-e.deltaY * 0.0015), 0.3, 8);
        r.mark3d();
      },
      { passive: false },
    );
    add("dblclick", () => {
      v.pane3d.cam = { az: 0, el: 0, zoom: 1 };
      r.mark3d();
    });
  }

  private bindKeys(): void {
    const v = this.v;
    const onKey = (e: KeyboardEvent) => {
      const t = e.target as HTMLElement;
      if (t && t !== v.root && (t.tagName === "SELECT" || (t.tagName === "INPUT" && (t as HTMLInputElement).type !== "range")))
        return;
      const p = v.active;
      let handled = true;
      if (v.ruler.onKey(e) || v.annot.onKey(e)) {
        e.preventDefault();
        e.stopPropagation();
        return;
      }
      switch (e.key) {
        case "ArrowUp":
          v.step(p, 1, e.timeStamp);
          break;
        case "ArrowDown":
          v.step(p, -1, e.timeStamp);
          break;
        case "PageUp":
          v.step(p, 10, e.timeStamp);
          break;
        case "PageDown":
          v.step(p, -10, e.timeStamp);
          break;
        case "+":
        case "=":
          this.zoomAt(p, 1.25, v.panes[p].cssW / 2, v.panes[p].cssH / 2);
          break;
        case "-":
        case "_":
          this.zoomAt(p, 0.8, v.panes[p].cssW / 2, v.panes[p].cssH / 2);
          break;
        case "0":
          v.panes[p].view = { zoom: 1, panX: 0, panY: 0 };
          v.render.markView(p);
          break;
        default:
          handled = false;
      }
      if (handled) {
        e.preventDefault();
        e.stopPropagation();
      }
    };
    v.root.addEventListener("keydown", onKey);
    v.disposers.push(() => v.root.removeEventListener("keydown", onKey));
  }
}
