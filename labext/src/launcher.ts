// Launcher section "MedAI Lab": template cards (copy a notebook into the launcher's folder and
// open it) and the MLflow UI (jupyter-server-proxy entry point `mlflow`, new browser tab).
import { JupyterFrontEnd } from '@jupyterlab/application';
import { Notification } from '@jupyterlab/apputils';
import { PageConfig, URLExt } from '@jupyterlab/coreutils';
import { ILauncher } from '@jupyterlab/launcher';
import { LabIcon } from '@jupyterlab/ui-components';

import { CATEGORY, describeError, requestJSON } from './api';
import { hackathonIcon, heartIcon, liverIcon, lungIcon, mlflowIcon, pacsIcon, viewerIcon } from './icons';
import { Settings } from './settings';

export const CommandIDs = {
  newFromTemplate: 'medai-lab:new-from-template',
  openMlflow: 'medai-lab:open-mlflow'
};

/** A template card as the server lists it (GET templates, lab-api.md): one per catalogue task
 * (a task added as a YAML file gets its card), then the other notebooks. */
interface ITemplate {
  id: string;
  title: string;
  icon: string;
  description?: string;
  available?: boolean;
}

const ICONS: Record<string, LabIcon> = {
  lung: lungIcon,
  liver: liverIcon,
  heart: heartIcon,
  pacs: pacsIcon,
  trophy: hackathonIcon
};

/** The cards the server listed, in launcher order (filled at activation). */
export const TEMPLATES: ITemplate[] = [];

const byId = (id: unknown): ITemplate | undefined => TEMPLATES.find(t => t.id === id);
const iconOf = (id: unknown): LabIcon => ICONS[byId(id)?.icon ?? ''] ?? viewerIcon;

/**
 * The MLflow UI: `{base_url}mlflow/` (jupyter-server-proxy entry point `mlflow`, behind Jupyter's
 * own authentication, on the server's tracking store), unless the `trackingUri` setting names an
 * MLflow tracking *server* (http/https), whose own UI is then opened.
 */
export function mlflowUrl(trackingUri = ''): string {
  if (/^https?:\/\//i.test(trackingUri.trim())) {
    return trackingUri.trim();
  }
  return URLExt.join(PageConfig.getBaseUrl(), 'mlflow/');
}

export function activateLauncher(app: JupyterFrontEnd, settings: Settings, launcher: ILauncher | null): void {
  const { commands } = app;

  commands.addCommand(CommandIDs.newFromTemplate, {
    label: args => byId(args.id)?.title ?? 'MedAI Lab notebook',
    // No caption: the launcher card's `title` is then its label ("Lung"), a stable test selector.
    icon: args => iconOf(args.id),
    describedBy: {
      args: {
        type: 'object',
        properties: {
          id: { type: 'string', description: 'A template id (GET templates)' },
          cwd: { type: 'string', description: 'Folder (relative to the server root)' }
        },
        required: ['id']
      }
    },
    execute: async args => {
      const id = String(args.id ?? '');
      const dir = String(args.cwd ?? '');
      try {
        const answer = await requestJSON<{ path: string }>('templates', {
          method: 'POST',
          body: JSON.stringify({ id, dir })
        });
        return await commands.execute('docmanager:open', { path: answer.path });
      } catch (err) {
        const label = byId(id)?.title ?? id;
        Notification.error(`MedAI Lab: could not create the ${label} notebook: ${describeError(err)}`, {
          autoClose: 8000
        });
        return undefined;
      }
    }
  });

  commands.addCommand(CommandIDs.openMlflow, {
    label: 'MLflow',
    icon: mlflowIcon,
    execute: () => {
      const url = mlflowUrl(settings.trackingUri);
      const win = window.open(url, '_blank');
      if (!win) {
        Notification.warning(`MedAI Lab: the browser blocked the MLflow tab; open ${url}`, {
          autoClose: 8000
        });
      }
      return url;
    }
  });

  if (launcher) {
    void addTemplateCards(launcher);
  }
}

/** One card per template the server lists with its notebook installed, then MLflow. */
async function addTemplateCards(launcher: ILauncher): Promise<void> {
  try {
    const listed = await requestJSON<ITemplate[]>('templates');
    TEMPLATES.splice(0, TEMPLATES.length, ...listed.filter(t => t.available !== false));
  } catch (err) {
    console.warn(`MedAI Lab: no template cards: ${describeError(err)}`);
  }
  TEMPLATES.forEach((t, rank) =>
    launcher.add({ command: CommandIDs.newFromTemplate, args: { id: t.id }, category: CATEGORY, rank })
  );
  launcher.add({ command: CommandIDs.openMlflow, category: CATEGORY, rank: TEMPLATES.length });
}
