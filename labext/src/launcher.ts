// Launcher section "MedAI Lab": template cards (copy a notebook into the launcher's folder and
// open it) and the MLflow UI (jupyter-server-proxy entry point `mlflow`, new browser tab).
import { JupyterFrontEnd } from '@jupyterlab/application';
import { Notification } from '@jupyterlab/apputils';
import { PageConfig, URLExt } from '@jupyterlab/coreutils';
import { ILauncher } from '@jupyterlab/launcher';
import { LabIcon } from '@jupyterlab/ui-components';

import { CATEGORY, describeError, requestJSON } from './api';
import { hackathonIcon, heartIcon, liverIcon, lungIcon, mlflowIcon, pacsIcon } from './icons';
import { Settings } from './settings';

export const CommandIDs = {
  newFromTemplate: 'medai-lab:new-from-template',
  openMlflow: 'medai-lab:open-mlflow'
};

interface ITemplate {
  id: string;
  label: string;
  icon: LabIcon;
}

/** The cards, in launcher order. Ids are the server's template ids (lab-api.md). */
export const TEMPLATES: ITemplate[] = [
  { id: 'lung', label: 'Lung', icon: lungIcon },
  { id: 'liver', label: 'Liver', icon: liverIcon },
  { id: 'heart', label: 'Heart', icon: heartIcon },
  { id: 'pacs_deid', label: 'PACS & de-identification', icon: pacsIcon },
  { id: 'hackathon', label: 'Hackathon', icon: hackathonIcon }
];

const byId = (id: unknown): ITemplate | undefined => TEMPLATES.find(t => t.id === id);

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

export function activateLauncher(
  app: JupyterFrontEnd,
  settings: Settings,
  launcher: ILauncher | null
): void {
  const { commands } = app;

  commands.addCommand(CommandIDs.newFromTemplate, {
    label: args => byId(args.id)?.label ?? 'MedAI Lab notebook',
    // No caption: the launcher card's `title` is then its label ("Lung"), a stable test selector.
    icon: args => byId(args.id)?.icon ?? lungIcon,
    describedBy: {
      args: {
        type: 'object',
        properties: {
          id: { type: 'string', enum: TEMPLATES.map(t => t.id) },
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
        const label = byId(id)?.label ?? id;
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
    TEMPLATES.forEach((t, rank) =>
      launcher.add({ command: CommandIDs.newFromTemplate, args: { id: t.id }, category: CATEGORY, rank })
    );
    launcher.add({ command: CommandIDs.openMlflow, category: CATEGORY, rank: TEMPLATES.length });
  }
}
