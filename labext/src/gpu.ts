// Status bar item "GPU": polls {base_url}medai-lab/api/gpus and api/share (every
// gpuRefreshSeconds, standby while the page is hidden). Text "CPU only" or "GPU0 12.1/80 GB 35%", then the server's CPU and
// memory share ("2 CPU 8 GB"); the tooltip lists the processes, the user's own marked. The node
// carries data-medai-gpu="loading|cpu-only|ok|error" and data-medai-cpus (the CPU share).
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

/** This server's CPU and memory share (its cgroup on a hub; the machine elsewhere). */
export interface IShare {
  cpus: number;
  threads: number;
  memory: number | null;
}

export interface IGpuReport {
  cpu_only: boolean;
  gpus: IGpu[];
  driver: string | null;
  error: string | null;
  share?: IShare; // from {base_url}medai-lab/api/share
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

/** Short text of the share: "2 CPU 8 GB" (memory left out when there is no limit). */
export function shareText(share: IShare | undefined): string {
  if (!share) {
    return '';
  }
  const cpus = Number.isInteger(share.cpus) ? String(share.cpus) : share.cpus.toFixed(1);
  return share.memory ? `${cpus} CPU ${gb(share.memory)} GB` : `${cpus} CPU`;
}

function shareLine(share: IShare | undefined): string {
  if (!share) {
    return '';
  }
  const mem = share.memory ? `${gb(share.memory)} GB memory` : 'no memory limit';
  return `This server's share: ${share.cpus} CPU (${share.threads} threads), ${mem}`;
}

/** Status bar text and tooltip for one report: the GPUs, then the CPU and memory share. */
export function describe(report: IGpuReport): { text: string; tooltip: string } {
  const gpu = describeGpus(report);
  const share = shareText(report.share);
  return {
    text: share ? `${gpu.text} \u00b7 ${share}` : gpu.text,
    tooltip: report.share ? `${gpu.tooltip}\n${shareLine(report.share)}` : gpu.tooltip
  };
}

function describeGpus(report: IGpuReport): { text: string; tooltip: string } {
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
      report = { ...report, share: await requestJSON<IShare>('share').catch(() => undefined) };
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
    this.node.setAttribute('data-medai-cpus', String(report.share?.cpus ?? ''));
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
