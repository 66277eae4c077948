// Status bar item "GPU": polls {base_url}medai-lab/api/gpus (every gpuRefreshSeconds, standby
// while the page is hidden). Text "CPU only" or "GPU0 12.1/80 GB 35%"; the tooltip lists the
// processes, the user's own marked. The node carries data-medai-gpu="loading|cpu-only|ok|error".
import { Poll } from '@lumino/polling';
import { Widget } from '@lumino/widgets';

import { describeError, requestJSON } from './api';
import { Settings } from './settings';

export interface IGpuProcess {
  pid: number;
  memory: number | null;
  mine: boolean;
}

export interface IGpu {
  index: number;
  uuid?: string;
  name: string;
  memory_total: number | null;
  memory_used: number | null;
  utilization: number | null;
  processes?: IGpuProcess[];
}

export interface IGpuReport {
  cpu_only: boolean;
  gpus: IGpu[];
  driver: string | null;
  error: string | null;
}

const GB = 1e9;

function gb(bytes: number | null | undefined, digits = 1): string {
  if (bytes === null || bytes === undefined || !isFinite(bytes)) {
    return '?';
  }
  const v = bytes / GB;
  return v >= 10 || Number.isInteger(v) ? v.toFixed(0) : v.toFixed(digits);
}

/** Short text of one GPU: "GPU0 12.1/80 GB 35%". */
export function gpuText(g: IGpu): string {
  const util = g.utilization === null || g.utilization === undefined ? '' : ` ${Math.round(g.utilization)}%`;
  const used = g.memory_used === null || g.memory_used === undefined ? '?' : (g.memory_used / GB).toFixed(1);
  return `GPU${g.index} ${used}/${gb(g.memory_total)} GB${util}`;
}

/** Status bar text and tooltip for one report. */
export function describe(report: IGpuReport): { text: string; tooltip: string } {
  if (report.cpu_only || !report.gpus || report.gpus.length === 0) {
    const why = report.error ? `\n${report.error}` : '';
    return { text: 'CPU only', tooltip: `No GPU visible to this server.${why}` };
  }
  const lines: string[] = [];
  for (const g of report.gpus) {
    const util = g.utilization === null || g.utilization === undefined ? '?' : `${Math.round(g.utilization)}%`;
    lines.push(`GPU${g.index} ${g.name}: ${gb(g.memory_used)} of ${gb(g.memory_total)} GB used, ${util} busy`);
    const procs = g.processes ?? [];
    if (procs.length === 0) {
      lines.push('    no processes');
    }
    for (const p of procs) {
      lines.push(`  ${p.mine ? '\u2605' : ' '} pid ${p.pid}  ${gb(p.memory, 2)} GB${p.mine ? '  (yours)' : ''}`);
    }
  }
  if (report.driver) {
    lines.push(`driver ${report.driver}`);
  }
  if (report.error) {
    lines.push(report.error);
  }
  return { text: report.gpus.map(gpuText).join(' \u00b7 '), tooltip: lines.join('\n') };
}

export class GpuStatus extends Widget {
  private poll: Poll;
  private report: IGpuReport | null = null;

  constructor(private settings: Settings) {
    super();
    this.addClass('medai-GpuStatus');
    this.addClass('jp-StatusBar-TextItem');
    this.node.setAttribute('data-medai-gpu', 'loading');
    this.node.textContent = 'GPU \u2026';
    this.node.title = 'MedAI Lab: GPU status';
    this.poll = new Poll({
      auto: true,
      factory: () => this.refresh(),
      frequency: { interval: this.interval(), backoff: true, max: 60 * 1000 },
      name: 'medai-lab:gpus',
      standby: 'when-hidden'
    });
    settings.changed.connect(this.onSettings, this);
  }

  /** The last report (for tests / other plugins). */
  get last(): IGpuReport | null {
    return this.report;
  }

  private interval(): number {
    return Math.max(1, this.settings.gpuRefreshSeconds) * 1000;
  }

  private onSettings(): void {
    const interval = this.interval();
    if (this.poll.frequency.interval !== interval) {
      this.poll.frequency = { ...this.poll.frequency, interval };
    }
  }

  private async refresh(): Promise<void> {
    let report: IGpuReport;
    try {
      report = await requestJSON<IGpuReport>('gpus');
    } catch (err) {
      this.report = null;
      this.node.setAttribute('data-medai-gpu', 'error');
      this.node.textContent = 'GPU n/a';
      this.node.title = `MedAI Lab: GPU status unavailable: ${describeError(err)}`;
      throw err; // lets the poll back off
    }
    this.report = report;
    const { text, tooltip } = describe(report);
    const state = report.cpu_only || !report.gpus?.length ? 'cpu-only' : 'ok';
    this.node.setAttribute('data-medai-gpu', state);
    this.node.setAttribute('data-medai-gpu-count', String(report.gpus?.length ?? 0));
    this.node.textContent = text;
    this.node.title = tooltip;
  }

  dispose(): void {
    if (this.isDisposed) {
      return;
    }
    this.poll.dispose();
    this.settings.changed.disconnect(this.onSettings, this);
    super.dispose();
  }
}
