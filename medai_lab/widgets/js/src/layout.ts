// Layout and toolbar wiring: controls <-> state, legend, progress bar, info line, pane sizing.
import type { Tool } from "./annotate";
import { clamp, sliceAxis, voxelToWorld } from "./geometry";
import { labelStats } from "./measure";
import type { ViewFields, ViewState } from "./state";
import { fillHoles, interpolate } from "./smart";
import { COMPARE_COLORS, labelColor, labelName } from "./overlay";
import { PLANES, type Convention, type Layout, type OverlayMode, type Vec3 } from "./types";
import { renderLegend, type LegendItem } from "./ui";
import type { Viewer } from "./viewer";

function fmt(x: number, d = 1): string {
  return Number.isInteger(x) ? String(x) : x.toFixed(d);
}

export class ViewerLayout {
  constructor(private v: Viewer) {}

  /** Reflect the viewer state in the toolbar, panes (visibility, letters, sliders) and legend. */
  /** Keep the toolbar, legend and active pane in step with the view state (state.ts). */
  watch(view: ViewState): void {
    const v = this.v;
    view.on(["layout", "convention", "overlayMode", "opacity", "outline", "show3d", "win", "preset", "frame"], () =>
      this.syncControls(),
    );
    view.on(["overlayMode", "hidden"], () => this.syncLegend());
    view.on(["active"], () => {
      for (const q of PLANES) v.panes[q].root.classList.toggle("mv-active", q === v.active);
    });
  }

  syncControls(): void {
    const v = this.v,
      u = v.ui;
    for (const [name, b] of Object.entries(u.presets)) b.classList.toggle("mv-on", name === v.preset);
    u.wl.textContent = `W ${fmt(v.win[0])} L ${fmt(v.win[1])}`;
    u.layout.value = v.layout;
    u.convention.value = v.convention;
    u.overlay.value = v.overlayMode;
    u.opacity.value = String(v.opacity);
    u.outline.checked = v.outline;
    u.show3d.checked = v.show3d;
    const vols = v.meta?.volumes;
    for (const o of Array.from(u.overlay.options)) {
      if (o.value === "prediction") o.disabled = !!vols && !vols.includes("prediction");
      if (o.value === "compare") o.disabled = !!vols && !(vols.includes("prediction") && vols.includes("labels"));
    }
    u.grid.classList.toggle("mv-single", v.layout !== "three");
    for (const p of PLANES) {
      const pane = v.panes[p];
      pane.root.classList.toggle("mv-shown", v.layout === p);
      pane.setLetters(v.convention);
      const n = v.meta ? v.meta.shape[sliceAxis(p)] : 1;
      pane.slider.max = String(n - 1);
      pane.slider.value = String(v.cursor[sliceAxis(p)]);
    }
    const frames = v.meta?.frames ?? 1,
      ax4 = v.meta?.axis4;
    u.frameBox.style.display = frames > 1 ? "" : "none";
    if (frames > 1) {
      u.frame.max = String(frames - 1);
      if (document.activeElement !== u.frame) u.frame.value = String(v.frame);
      u.frameName.textContent = ax4?.name ?? "t";
      const val = ax4?.values?.[v.frame];
      u.frameText.textContent = `${v.frame + 1}/${frames}${val !== undefined ? ` (${fmt(val, 2)} ${ax4?.unit ?? ""})` : ""}`;
    }
    this.syncLegend();
    this.syncEditBar();
  }

  private pickerKey = "";

  /** The annotation bar from the annotator's state (tool, label, brush, undo sizes). */
  syncEditBar(): void {
    const v = this.v,
      a = v.annot,
      e = v.ui.edit;
    for (const [t, b] of Object.entries(e.tools)) b.classList.toggle("mv-on", t === a.tool);
    const dict = v.dictionary();
    const key = JSON.stringify(dict.map((d) => [d.value, d.name]));
    if (key !== this.pickerKey) {
      this.pickerKey = key;
      e.label.textContent = "";
      dict.forEach((d, n) => {
        const o = document.createElement("option");
        o.value = String(d.value);
        o.textContent = `${n < 9 ? `${n + 1} ` : ""}${d.name} (${d.value})`;
        e.label.appendChild(o);
      });
    }
    if (!dict.some((d) => d.value === a.activeLabel)) {
      const o = document.createElement("option");
      o.value = String(a.activeLabel);
      o.textContent = labelName(a.activeLabel, v.meta?.labels);
      e.label.appendChild(o);
      this.pickerKey = "";
    }
    e.label.value = String(a.activeLabel);
    e.swatch.style.background = `rgb(${labelColor(a.activeLabel, v.meta?.labels).join(",")})`;
    e.radius.value = String(a.brushRadius);
    e.radiusText.textContent = `${fmt(a.brushRadius)} mm`;
    e.sphere.checked = a.brush3d;
    e.inWindow.checked = a.inWindow;
    if (document.activeElement !== e.tolerance) e.tolerance.value = String(a.growTolerance);
    const [nu, nr] = a.history.sizes;
    e.undo.disabled = nu === 0;
    e.redo.disabled = nr === 0;
    e.accept.disabled = e.reject.disabled = !a.assist.preview;
    e.counts.textContent = a.assist.error ? a.assist.error : a.seq ? `${a.seq} edit${a.seq > 1 ? "s" : ""} sent` : "";
    e.counts.classList.toggle("mv-error", !!a.assist.error);
  }

  syncLegend(): void {
    const v = this.v;
    const items: LegendItem[] = [];
    if (v.overlayMode === "compare") {
      for (const [k, name] of [
        ["TP", "true positive"],
        ["FP", "false positive"],
        ["FN", "false negative"],
      ] as const)
        items.push({ value: 0, name, color: COMPARE_COLORS[k], hidden: false, toggle: false });
    }
    const labels = v.meta?.labels ?? [];
    for (const l of labels)
      items.push({
        value: l.value,
        name: l.name,
        color: labelColor(l.value, labels),
        hidden: v.hidden.has(l.value),
        toggle: true,
      });
    renderLegend(v.ui.legend, items, (value, vis) => {
      const h = new Set(v.hidden);
      if (vis) h.delete(value);
      else h.add(value);
      v.setHidden(h, true);
    });
  }

  /** Toolbar controls -> state + traits. */
  bindControls(): void {
    const v = this.v,
      u = v.ui,
      sync = v.sync;
    for (const [name, b] of Object.entries(u.presets)) b.addEventListener("click", () => v.applyPreset(name, true));
    const set = (patch: Partial<ViewFields>) => v.view.set(patch, "user");
    u.layout.addEventListener("change", () => {
      const layout = u.layout.value as Layout;
      set({ layout, active: layout !== "three" ? layout : undefined });
    });
    u.convention.addEventListener("change", () => set({ convention: u.convention.value as Convention }));
    u.overlay.addEventListener("change", () => set({ overlayMode: u.overlay.value as OverlayMode }));
    u.opacity.addEventListener("input", () => set({ opacity: Number(u.opacity.value) }));
    u.outline.addEventListener("change", () => set({ outline: u.outline.checked }));
    u.show3d.addEventListener("change", () => set({ show3d: u.show3d.checked }));
    u.measure.addEventListener("click", () => this.showStats());
    u.frame.addEventListener("input", () => v.setFrame(Number(u.frame.value), true));
    const e = u.edit,
      a = v.annot;
    for (const [t, b] of Object.entries(e.tools)) b.addEventListener("click", () => a.setTool(t as Tool, true));
    e.label.addEventListener("change", () => a.setLabel(Number(e.label.value), true));
    e.radius.addEventListener("input", () => a.setRadius(Number(e.radius.value), true));
    e.sphere.addEventListener("change", () => {
      a.brush3d = e.sphere.checked;
      sync.commit("brush_3d", a.brush3d, true);
    });
    e.inWindow.addEventListener("change", () => {
      a.inWindow = e.inWindow.checked;
      sync.commit("brush_in_window", a.inWindow, true);
    });
    e.tolerance.addEventListener("change", () => {
      const t = Number(e.tolerance.value);
      if (isFinite(t) && t >= 0) {
        a.growTolerance = t;
        sync.commit("grow_tolerance", t, true);
      }
    });
    e.fill.addEventListener("click", () => fillHoles(a));
    e.interp.addEventListener("click", () => interpolate(a));
    e.accept.addEventListener("click", () => a.assist.accept());
    e.reject.addEventListener("click", () => a.assist.reject());
    e.undo.addEventListener("click", () => a.undo());
    e.redo.addEventListener("click", () => a.redo());
    // Keep keyboard focus on the viewer after using a control.
    for (const c of [u.layout, u.convention, u.overlay, e.label]) c.addEventListener("change", () => v.root.focus());
  }

  /** Fill the side panel's table with the statistics of the labels shown (full resolution). */
  showStats(): void {
    const v = this.v,
      t = v.ui.stats,
      lab = v.store.best("labels"),
      img = v.store.best("image");
    t.textContent = "";
    if (!v.meta || !lab || !img || lab.level !== 0 || img.level !== 0) {
      t.insertRow().insertCell().textContent = lab ? "waiting for the full image" : "no labels";
      return;
    }
    const head = t.createTHead().insertRow();
    for (const h of ["label", "mL", "mean", "SD"]) head.appendChild(document.createElement("th")).textContent = h;
    for (const s of labelStats(lab, img, v.meta.spacing)) {
      const row = t.insertRow();
      row.dataset.value = String(s.value);
      row.dataset.voxels = String(s.voxels);
      row.dataset.ml = String(s.ml);
      row.dataset.mean = String(s.mean);
      row.dataset.sd = String(s.sd);
      const name = row.insertCell();
      name.textContent = labelName(s.value, v.meta.labels);
      name.style.color = `rgb(${labelColor(s.value, v.meta.labels).join(",")})`;
      row.insertCell().textContent = s.ml.toFixed(2);
      row.insertCell().textContent = s.mean.toFixed(1);
      row.insertCell().textContent = s.sd.toFixed(1);
    }
  }

  /** Size the grid (unless meta.height fixes it) and the pane canvases to their boxes. */
  observeSize(): void {
    const v = this.v,
      r = v.render;
    const dpr = () => window.devicePixelRatio || 1;
    const ro = new ResizeObserver(() => {
      if (!v.meta?.height) {
        const w = v.ui.grid.clientWidth;
        const h = Math.round(clamp(v.layout === "three" ? w * 0.82 : w * 0.72, 300, 900));
        if (Math.abs(v.ui.grid.clientHeight - h) > 1) v.ui.grid.style.height = `${h}px`;
      }
      for (const p of PLANES) {
        const st = v.panes[p].canvas.parentElement!;
        if (v.panes[p].resize(st.clientWidth, st.clientHeight, dpr())) {
          r.dirtyView.add(p);
          r.dirtyXhair = true;
        }
      }
      const st3 = v.pane3d.canvas.parentElement!;
      if (v.pane3d.resize(st3.clientWidth, st3.clientHeight, dpr())) r.dirty3d = true;
      // Paint synchronously so a resize never shows an empty canvas.
      r.renderNow();
    });
    ro.observe(v.ui.grid);
    for (const p of PLANES) ro.observe(v.panes[p].root);
    ro.observe(v.pane3d.root);
    v.disposers.push(() => ro.disconnect());
  }

  /** Progress bar and its text, from the transport's byte counters. */
  showProgress(): void {
    const v = this.v,
      s = v.store,
      u = v.ui;
    const frac = s.expectedBytes > 0 ? s.decodedBytes / s.expectedBytes : 0;
    const loading = s.loading();
    u.progress.classList.toggle("mv-done", !loading);
    u.bar.style.width = `${Math.round(frac * 100)}%`;
    const lvl = s.bestLevelNumber("image");
    u.ptext.textContent = loading ? `loading ${Math.round(frac * 100)}%${lvl > 0 ? " (preview shown)" : ""}` : v.error ? "" : "";
  }

  showError(m: string): void {
    this.v.ui.ptext.textContent = m;
    this.v.ui.ptext.classList.add("mv-error");
  }

  private valueAt(name: string, ijk: Vec3): number | null {
    const lv = this.v.store.best(name);
    if (!lv) return null;
    const idx = [0, 1, 2].map((a) => clamp(Math.floor(ijk[a] / (lv.factor[a] || 1)), 0, lv.shape[a] - 1));
    return lv.data[idx[0] + lv.shape[0] * (idx[1] + lv.shape[1] * idx[2])];
  }

  /** The info line: voxel, RAS position, value and labels under the cursor. */
  updateInfo(): void {
    const v = this.v;
    const meta = v.meta;
    if (!meta) return;
    const c = v.cursor;
    const w = voxelToWorld(meta.affine, meta.spacing, c);
    const val = this.valueAt("image", c);
    const ct = (meta.modality || "").toUpperCase() === "CT";
    const lvl = v.store.bestLevelNumber("image");
    let s = `voxel [${c.join(", ")}] · RAS (${w.map((x) => x.toFixed(1)).join(", ")}) mm`;
    if (val !== null)
      s += ` · ${ct ? "HU" : "value"} ${Number.isInteger(val) ? val : val.toPrecision(5)}${lvl > 0 ? " (preview)" : ""}`;
    const lab = this.valueAt("labels", c);
    if (lab) s += ` · label ${labelName(lab, meta.labels)}`;
    const pr = this.valueAt("prediction", c);
    if (pr) s += ` · pred ${labelName(pr, meta.labels)}`;
    v.ui.info.textContent = s;
  }
}
