// Styles, injected from JS (one bundle file, no external fonts or assets).
export const CSS = `
.medai-viewer{--mv-bg:#0d1117;--mv-fg:#d6dde6;--mv-mut:#8b949e;--mv-acc:#2f81f7;--mv-bd:#30363d;
 font:12px/1.35 system-ui,-apple-system,"Segoe UI",Roboto,Helvetica,Arial,sans-serif;color:var(--mv-fg);
 background:var(--mv-bg);border:1px solid var(--mv-bd);border-radius:6px;padding:6px;box-sizing:border-box;
 outline:none;user-select:none;-webkit-user-select:none;position:relative;min-width:320px}
.medai-viewer:focus-visible{box-shadow:0 0 0 2px var(--mv-acc)}
.medai-viewer *{box-sizing:border-box}
.mv-toolbar{display:flex;flex-wrap:wrap;align-items:center;gap:4px 8px;margin-bottom:6px}
.mv-title{font-weight:600;margin-right:6px;max-width:30ch;overflow:hidden;text-overflow:ellipsis;white-space:nowrap}
.mv-group{display:flex;align-items:center;gap:3px}
.mv-toolbar button{background:#21262d;color:var(--mv-fg);border:1px solid var(--mv-bd);border-radius:4px;
 padding:2px 7px;font:inherit;cursor:pointer}
.mv-toolbar button:hover{border-color:#8b949e}
.mv-toolbar button.mv-on{background:var(--mv-acc);border-color:var(--mv-acc);color:#fff}
.mv-toolbar select{background:#21262d;color:var(--mv-fg);border:1px solid var(--mv-bd);border-radius:4px;font:inherit;padding:1px 2px}
.mv-toolbar label{display:flex;align-items:center;gap:3px;color:var(--mv-mut)}
.mv-wl{font-variant-numeric:tabular-nums;color:var(--mv-mut);min-width:10ch}
.mv-body{display:flex;gap:6px}
.mv-grid{flex:1;display:grid;gap:4px;grid-template-columns:1fr 1fr;grid-template-rows:1fr 1fr;min-width:0}
.mv-grid.mv-single{grid-template-columns:1fr;grid-template-rows:1fr}
.mv-grid.mv-single .mv-pane{display:none}
.mv-grid.mv-single .mv-pane.mv-shown{display:flex}
.mv-pane{display:flex;flex-direction:column;min-width:0;min-height:0;background:#000;border:1px solid var(--mv-bd);border-radius:3px}
.mv-pane.mv-active{border-color:#6e7681}
.mv-stage{position:relative;flex:1;min-height:0;overflow:hidden}
.mv-stage canvas{position:absolute;left:0;top:0;display:block}
.mv-img{cursor:crosshair;touch-action:none}
.mv-pane3d .mv-img{cursor:grab}
.mv-xhair{pointer-events:none}
.mv-letter{position:absolute;pointer-events:none;font-weight:700;font-size:13px;line-height:15px;color:#f0c674;background:#000a;padding:0 3px;border-radius:3px}
.mv-left{left:4px;top:50%;transform:translateY(-50%)}
.mv-right{right:4px;top:50%;transform:translateY(-50%)}
.mv-top{top:3px;left:50%;transform:translateX(-50%)}
.mv-bottom{bottom:3px;left:50%;transform:translateX(-50%)}
.mv-plabel{position:absolute;left:4px;top:3px;pointer-events:none;font-size:11px;text-shadow:0 0 3px #000;color:var(--mv-mut)}
.mv-note{position:absolute;left:0;right:0;top:45%;text-align:center;color:var(--mv-mut);pointer-events:none}
.mv-slider{width:100%;margin:0;height:14px;accent-color:var(--mv-acc)}
.mv-side{width:150px;flex:none;display:flex;flex-direction:column;gap:4px;overflow:auto}
.mv-side h4{margin:2px 0;font-size:11px;color:var(--mv-mut);font-weight:600;text-transform:uppercase;letter-spacing:.04em}
.mv-leg{display:flex;align-items:center;gap:5px;cursor:pointer;white-space:nowrap;overflow:hidden;text-overflow:ellipsis}
.mv-sw{width:11px;height:11px;border-radius:2px;flex:none;border:1px solid #0006}
.mv-measure{background:#21262d;color:var(--mv-fg);border:1px solid var(--mv-bd);border-radius:4px;font:inherit;cursor:pointer}
.mv-stats{border-collapse:collapse;font-size:11px;font-variant-numeric:tabular-nums}
.mv-stats td,.mv-stats th{padding:0 3px;text-align:right;white-space:nowrap}
.mv-stats td:first-child,.mv-stats th:first-child{text-align:left;max-width:60px;overflow:hidden;text-overflow:ellipsis}
.mv-info{margin-top:5px;min-height:1.4em;font-variant-numeric:tabular-nums;color:var(--mv-fg);white-space:nowrap;overflow:hidden;text-overflow:ellipsis}
.mv-progress{position:absolute;left:6px;right:6px;bottom:2px;height:3px;background:#21262d;border-radius:2px;overflow:hidden}
.mv-progress>div{height:100%;width:0;background:var(--mv-acc);transition:width .1s linear}
.mv-progress.mv-done{display:none}
.mv-ptext{color:var(--mv-mut);font-size:11px;margin-left:auto}
.mv-error{color:#ff7b72}
`;
