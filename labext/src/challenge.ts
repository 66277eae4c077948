// Hackathon panel: submit a file or folder from the server to the hub's challenge service, see
// this team's submissions and the leaderboard. Everything goes through the server extension
// ({base_url}medai-lab/api/challenge/...), which calls the hub with the server's own token: the
// page never holds a token. The panel node carries data-medai-challenge="loading|ready|error".
import { JupyterFrontEnd, JupyterFrontEndPlugin } from '@jupyterlab/application';
import { ICommandPalette } from '@jupyterlab/apputils';
import { IDefaultFileBrowser, IFileBrowserFactory } from '@jupyterlab/filebrowser';
import { Widget } from '@lumino/widgets';

import { CATEGORY, describeError, requestJSON } from './api';
import { hackathonIcon } from './icons';

interface IPhase {
  name: string;
  hidden: boolean;
  formats: string[];
  submissions_per_day: number;
}

interface IInfo {
  title: string;
  team: string;
  phases: IPhase[];
  submission_mb: number;
}

interface IScore {
  dice_mean?: number | null;
  hd95_mean?: number | null;
  nsd_mean?: number | null;
  n_failed?: number;
  n_cases?: number;
}

interface ISubmission {
  id: number;
  phase: string;
  format: string;
  status: string;
  submitted: string;
  score?: IScore;
}

interface IBoard {
  phase: string;
  hidden: boolean;
  rows: Record<string, string | number | null>[];
}

const num = (v: unknown, digits = 3): string => (typeof v === 'number' && isFinite(v) ? v.toFixed(digits) : '–');

function el<K extends keyof HTMLElementTagNameMap>(tag: K, text = '', cls = ''): HTMLElementTagNameMap[K] {
  const node = document.createElement(tag);
  if (text) node.textContent = text;
  if (cls) node.className = cls;
  return node;
}

function table(head: string[], rows: string[][], name: string): HTMLTableElement {
  const t = el('table', '', 'medai-Challenge-table');
  t.dataset.medaiTable = name;
  t.style.borderCollapse = 'collapse';
  t.style.width = '100%';
  const tr = t.createTHead().insertRow();
  head.forEach(h => tr.appendChild(el('th', h)).setAttribute('style', 'text-align:left'));
  const body = t.createTBody();
  rows.forEach(r => {
    const row = body.insertRow();
    r.forEach(c => (row.insertCell().textContent = c));
  });
  return t;
}

/** The panel: path + phase + Submit, "My submissions", "Leaderboard". */
export class ChallengePanel extends Widget {
  private info: IInfo | null = null;
  private readonly message = el('div', 'Loading…', 'medai-Challenge-message');
  private readonly path = el('input');
  private readonly phase = el('select');
  private readonly submitButton = el('button', 'Submit', 'jp-mod-styled jp-mod-accept');
  private readonly mine = el('div');
  private readonly board = el('div');

  constructor(private readonly selected: () => string | null) {
    super();
    this.id = 'medai-challenge';
    this.title.icon = hackathonIcon;
    this.title.caption = 'Hackathon: submit, my submissions, leaderboard';
    this.addClass('medai-Challenge');
    const s = this.node.style;
    s.padding = '8px';
    s.overflow = 'auto';
    s.fontSize = 'var(--jp-ui-font-size1)';
    s.background = 'var(--jp-layout-color1)';
    this.node.dataset.medaiChallenge = 'loading';

    this.path.placeholder = 'file or folder, relative to the server root';
    this.path.className = 'jp-mod-styled';
    this.path.style.width = '100%';
    const fromBrowser = el('button', 'Use selected file', 'jp-mod-styled');
    fromBrowser.onclick = () => {
      const p = this.selected();
      if (p) this.path.value = p;
    };
    this.submitButton.onclick = () => void this.submit();
    this.phase.className = 'jp-mod-styled';
    this.phase.onchange = () => void this.refresh();
    const refresh = el('button', 'Refresh', 'jp-mod-styled');
    refresh.onclick = () => void this.refresh();
    const form = el('div');
    form.append(this.path, fromBrowser, this.phase, this.submitButton, refresh);
    this.node.append(this.message, form, el('h3', 'My submissions'), this.mine, el('h3', 'Leaderboard'), this.board);
  }

  /** Put a path in the form (from the file browser's context menu). */
  setPath(path: string): void {
    this.path.value = path;
  }

  async load(): Promise<void> {
    try {
      this.info = await requestJSON<IInfo>('challenge/info');
      this.phase.replaceChildren(
        ...this.info.phases.map(p => {
          const o = el('option', `${p.name}${p.hidden ? ' (hidden)' : ''}`);
          o.value = p.name;
          return o;
        })
      );
      this.say(`${this.info.title} — team ${this.info.team}`);
      await this.refresh();
    } catch (err) {
      this.say(describeError(err), true);
    }
  }

  async refresh(): Promise<void> {
    try {
      const phase = this.phase.value;
      const q = phase ? `?phase=${encodeURIComponent(phase)}` : '';
      const [subs, board] = await Promise.all([
        requestJSON<ISubmission[]>(`challenge/submissions${q}`),
        requestJSON<IBoard>(`challenge/leaderboard${q}`)
      ]);
      this.mine.replaceChildren(
        table(
          ['#', 'status', 'submitted', 'Dice', 'HD95', 'failed'],
          subs.map(x => [
            String(x.id),
            x.status,
            x.submitted,
            num(x.score?.dice_mean),
            num(x.score?.hd95_mean, 2),
            x.score ? `${x.score.n_failed}/${x.score.n_cases}` : '–'
          ]),
          'mine'
        )
      );
      this.board.replaceChildren(
        table(
          ['rank', 'team', 'Dice', 'HD95', 'NSD'],
          board.rows.map(r => [String(r.rank), String(r.team), num(r.dice), num(r.hd95, 2), num(r.nsd)]),
          'leaderboard'
        )
      );
      this.node.dataset.medaiChallenge = 'ready';
    } catch (err) {
      this.say(describeError(err), true);
    }
  }

  async submit(): Promise<void> {
    const path = this.path.value.trim();
    if (!path) {
      this.say('choose a file or folder first', true);
      return;
    }
    this.submitButton.disabled = true;
    this.say(`submitting ${path}…`);
    try {
      const row = await requestJSON<ISubmission>('challenge/submissions', {
        method: 'POST',
        body: JSON.stringify({ path, phase: this.phase.value || null })
      });
      this.say(`submission ${row.id} (${row.phase}) is ${row.status}`);
      await this.refresh();
    } catch (err) {
      this.say(describeError(err), true);
    } finally {
      this.submitButton.disabled = false;
    }
  }

  private say(text: string, error = false): void {
    this.message.textContent = text;
    this.message.style.color = error ? 'var(--jp-error-color1)' : 'var(--jp-ui-font-color1)';
    if (error) this.node.dataset.medaiChallenge = 'error';
  }
}

export const CHALLENGE_COMMAND = 'medai-lab:challenge';

/** Command "Hackathon: submit and leaderboard" (palette, file browser context menu). */
export const challengePlugin: JupyterFrontEndPlugin<void> = {
  id: 'medai-lab:challenge',
  description: 'Submit to the hub challenge service; my submissions and the leaderboard.',
  autoStart: true,
  optional: [ICommandPalette, IFileBrowserFactory, IDefaultFileBrowser],
  activate: (
    app: JupyterFrontEnd,
    palette: ICommandPalette | null,
    browsers: IFileBrowserFactory | null,
    defaultBrowser: IDefaultFileBrowser | null
  ) => {
    const selected = (): string | null => {
      const browser = browsers?.tracker.currentWidget ?? defaultBrowser;
      const item = browser ? [...browser.selectedItems()][0] : undefined;
      return item ? item.path : null;
    };
    let panel: ChallengePanel | null = null;
    app.commands.addCommand(CHALLENGE_COMMAND, {
      label: args => (args.fromBrowser ? 'Submit to the Hackathon…' : 'Hackathon: Submit and Leaderboard'),
      icon: args => (args.fromBrowser ? hackathonIcon.bindprops({ stylesheet: 'menuItem' }) : hackathonIcon),
      execute: async args => {
        if (!panel || panel.isDisposed) {
          panel = new ChallengePanel(selected);
          app.shell.add(panel, 'right', { rank: 900 });
          void panel.load();
        }
        if (args.fromBrowser) {
          const p = selected();
          if (p) panel.setPath(p);
        }
        app.shell.activateById(panel.id);
      }
    });
    palette?.addItem({ command: CHALLENGE_COMMAND, category: CATEGORY });
    app.contextMenu.addItem({
      command: CHALLENGE_COMMAND,
      args: { fromBrowser: true },
      selector: '.jp-DirListing-item',
      rank: 4
    });
  }
};
