// MedAI Lab JupyterLab extension: launcher section, MedAI Viewer, GPU status item, MLflow item.
import { ILayoutRestorer, JupyterFrontEnd, JupyterFrontEndPlugin } from '@jupyterlab/application';
import { WidgetTracker } from '@jupyterlab/apputils';
import { IDocumentManager } from '@jupyterlab/docmanager';
import { DocumentWidget } from '@jupyterlab/docregistry';
import { IDefaultFileBrowser, IFileBrowserFactory } from '@jupyterlab/filebrowser';
import { ILauncher } from '@jupyterlab/launcher';
import { ISettingRegistry } from '@jupyterlab/settingregistry';
import { IStatusBar } from '@jupyterlab/statusbar';
import { ContentsManager } from '@jupyterlab/services';

import { PLUGIN_ID } from './api';
import { challengePlugin } from './challenge';
import { GpuStatus } from './gpu';
import { activateLauncher } from './launcher';
import { Settings } from './settings';
import {
  CONTENT_PROVIDER,
  FACTORY,
  FILE_TYPES,
  MODEL_FACTORY,
  ViewerFactory,
  ViewerPanel,
  VolumeModelFactory,
  createViewerWidget,
  readOnlyProvider
} from './viewer';
import { viewerIcon } from './icons';

export const CommandIDs = {
  openViewer: 'medai-lab:open-viewer'
};

/** One settings object shared by the plugins; it fills in (and follows changes) asynchronously. */
let shared: Settings | null = null;
function settingsFor(registry: ISettingRegistry | null): Settings {
  if (!shared) {
    shared = new Settings();
    void shared.load(registry);
  }
  return shared;
}

const VOLUME_EXT = /\.(nii|nii\.gz|dcm)$/i;

/** Launcher section "MedAI Lab" (template cards, MLflow) and the settings schema owner. */
const plugin: JupyterFrontEndPlugin<void> = {
  id: PLUGIN_ID,
  description: 'MedAI Lab launcher section: a card per catalogue task, PACS & de-identification, Hackathon, MLflow.',
  autoStart: true,
  optional: [ILauncher, ISettingRegistry],
  activate: (app: JupyterFrontEnd, launcher: ILauncher | null, registry: ISettingRegistry | null) => {
    activateLauncher(app, settingsFor(registry), launcher);
  }
};

/** Open With -> MedAI Viewer for .nii / .nii.gz / .dcm, and a context-menu entry for folders. */
const viewerPlugin: JupyterFrontEndPlugin<void> = {
  id: 'medai-lab:viewer',
  description: 'MedAI Viewer for NIfTI, DICOM files and DICOM folders.',
  autoStart: true,
  optional: [ISettingRegistry, IFileBrowserFactory, IDefaultFileBrowser, IDocumentManager, ILayoutRestorer],
  activate: (
    app: JupyterFrontEnd,
    registry: ISettingRegistry | null,
    browsers: IFileBrowserFactory | null,
    defaultBrowser: IDefaultFileBrowser | null,
    docManager: IDocumentManager | null,
    restorer: ILayoutRestorer | null
  ) => {
    const { commands, docRegistry, shell } = app;

    docRegistry.addFileType({
      name: 'medai-nifti',
      displayName: 'NIfTI image',
      extensions: ['.nii', '.nii.gz'],
      mimeTypes: ['application/x-nifti'],
      contentType: 'file',
      fileFormat: 'base64',
      icon: viewerIcon
    });
    docRegistry.addFileType({
      name: 'medai-dicom',
      displayName: 'DICOM file',
      extensions: ['.dcm'],
      mimeTypes: ['application/dicom'],
      contentType: 'file',
      fileFormat: 'base64',
      icon: viewerIcon
    });

    // The viewer's (empty) model must never be saved over an image: Save is disabled for it.
    const contents = app.serviceManager.contents;
    const drive = contents instanceof ContentsManager ? contents.defaultDrive : null;
    const providers = drive?.contentProviderRegistry;
    if (drive && providers) {
      providers.register(CONTENT_PROVIDER, readOnlyProvider(drive));
    }
    docRegistry.addModelFactory(new VolumeModelFactory());

    const settings = settingsFor(registry);
    const labelSources = {
      contents: app.serviceManager.contents,
      selected: (): string[] => {
        const browser = browsers?.tracker.currentWidget ?? defaultBrowser;
        return browser ? [...browser.selectedItems()].filter(i => i.type === 'file').map(i => i.path) : [];
      }
    };

    const factory = new ViewerFactory(
      {
        name: FACTORY,
        label: FACTORY,
        fileTypes: FILE_TYPES,
        defaultFor: FILE_TYPES,
        modelName: MODEL_FACTORY,
        readOnly: true,
        contentProviderId: providers ? CONTENT_PROVIDER : undefined
      },
      settings,
      labelSources
    );
    docRegistry.addWidgetFactory(factory);

    const docTracker = new WidgetTracker<DocumentWidget<ViewerPanel>>({ namespace: 'medai-viewer' });
    factory.widgetCreated.connect((_, widget) => {
      widget.context.pathChanged.connect(() => void docTracker.save(widget));
      void docTracker.add(widget);
    });
    if (restorer) {
      void restorer.restore(docTracker, {
        command: 'docmanager:open',
        args: widget => ({ path: widget.context.path, factory: FACTORY }),
        name: widget => widget.context.path
      });
    }

    /** Paths the command acts on: its `path` arg, else the file browser's selection. */
    const targets = (args: Record<string, unknown>): string[] => {
      if (typeof args.path === 'string') return [args.path];
      const browser = browsers?.tracker.currentWidget ?? defaultBrowser;
      if (!browser) return [];
      const items = [...browser.selectedItems()].filter(i => i.type === 'directory' || VOLUME_EXT.test(i.name));
      return items.map(i => i.path);
    };

    commands.addCommand(CommandIDs.openViewer, {
      label: 'Open in MedAI Viewer',
      caption: 'Show this NIfTI / DICOM image or DICOM folder in the MedAI Viewer',
      icon: args => (args.toolbar ? viewerIcon : viewerIcon.bindprops({ stylesheet: 'menuItem' })),
      describedBy: {
        args: {
          type: 'object',
          properties: { path: { type: 'string', description: 'File or folder relative to the server root' } }
        }
      },
      isVisible: args => targets(args).length > 0,
      execute: args => {
        const paths = targets(args);
        for (const path of paths) {
          const isDir = !VOLUME_EXT.test(path);
          if (!isDir && docManager) {
            docManager.openOrReveal(path, FACTORY);
            continue;
          }
          const widget = createViewerWidget(path, settings, labelSources);
          shell.add(widget, 'main');
          shell.activateById(widget.id);
        }
        return paths;
      }
    });

    app.contextMenu.addItem({
      command: CommandIDs.openViewer,
      selector: '.jp-DirListing-item[data-isdir="true"]',
      rank: 3
    });
    for (const ft of FILE_TYPES) {
      app.contextMenu.addItem({
        command: CommandIDs.openViewer,
        selector: `.jp-DirListing-item[data-file-type="${ft}"]`,
        rank: 3
      });
    }
  }
};

/** Status bar item "GPU". */
const gpuPlugin: JupyterFrontEndPlugin<void> = {
  id: 'medai-lab:gpu-status',
  description: 'GPU memory and utilisation in the status bar.',
  autoStart: true,
  optional: [IStatusBar, ISettingRegistry],
  activate: (_app: JupyterFrontEnd, statusBar: IStatusBar | null, registry: ISettingRegistry | null) => {
    if (!statusBar) return;
    const item = new GpuStatus(settingsFor(registry));
    item.id = 'medai-lab-gpu-status';
    statusBar.registerStatusItem('medai-lab:gpu-status', { item, align: 'left', rank: 100 });
  }
};

export default [plugin, viewerPlugin, gpuPlugin, challengePlugin];
