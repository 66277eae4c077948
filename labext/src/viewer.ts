// "MedAI Viewer": NIfTI / DICOM files and DICOM folders in the main area, rendered by the notebook
// widget's own viewer (medai_lab/widgets/js/src, the anywidget `render` API), fed from the framed
// stream of `GET medai-lab/api/volume?path=` through a small model object (./stream.ts).
import { MainAreaWidget, Notification } from '@jupyterlab/apputils';
import { PathExt } from '@jupyterlab/coreutils';
import { ABCWidgetFactory, DocumentModel, DocumentRegistry, DocumentWidget } from '@jupyterlab/docregistry';
import { Contents, IContentProvider } from '@jupyterlab/services';
import { Widget } from '@lumino/widgets';

import type { AnyModel } from '../../medai_lab/widgets/js/src/types';

import { describeError, errorMessage, request } from './api';
import { viewerIcon } from './icons';
import { Settings } from './settings';
import { FrameParser, StreamModel } from './stream';

export const FACTORY = 'MedAI Viewer';
export const MODEL_FACTORY = 'medai-volume';
export const CONTENT_PROVIDER = 'medai-lab:read-only';
export const FILE_TYPES = ['medai-nifti', 'medai-dicom'];

type RenderFn = (args: { model: AnyModel; el: HTMLElement }) => void | (() => void);

let viewerModule: Promise<RenderFn> | null = null;

/** The viewer's ES module, loaded on first use (its own chunk: Lab start-up does not pay for it). */
function loadViewer(): Promise<RenderFn> {
  if (!viewerModule) {
    viewerModule = import('../../medai_lab/widgets/js/src/index').then(m => m.default.render);
    viewerModule.catch(() => (viewerModule = null));
  }
  return viewerModule;
}

/** Load state of a panel, mirrored on its node as data-medai-viewer-state. */
export type ViewerState = 'connecting' | 'loading' | 'done' | 'error';

/**
 * A panel showing one volume. Attribute hooks for tests: `data-medai-viewer-path` (the path),
 * `data-medai-viewer-state` (connecting | loading | done | error); the viewer inside has
 * `[data-medai-viewer]` and `canvas[data-plane]` (PROTOCOL.md "Test hooks").
 */
export class ViewerPanel extends Widget {
  readonly path: string;
  readonly model: StreamModel;
  private host: HTMLDivElement;
  private message: HTMLDivElement;
  private abort = new AbortController();
  private cleanup: (() => void) | null = null;
  private started = false;

  constructor(options: { path: string; labels?: string; settings: Settings }) {
    super();
    this.path = options.path;
    this.labels = options.labels;
    this.settings = options.settings;
    this.model = new StreamModel();
    this.addClass('medai-ViewerPanel');
    this.node.setAttribute('data-medai-viewer-path', this.path);
    this.message = document.createElement('div');
    this.message.className = 'medai-ViewerPanel-message';
    this.host = document.createElement('div');
    this.host.className = 'medai-ViewerPanel-host';
    this.node.append(this.message, this.host);
    this.setState('connecting', `Loading ${this.path || '/'} \u2026`);
    this.model.on('change:status', (s: any) => {
      if (s && s.error) this.setState('error');
      else if (s && s.loading === false && s.level >= 0) this.setState('done');
    });
  }

  private labels: string | undefined;
  private settings: Settings;

  get state(): ViewerState {
    return (this.node.getAttribute('data-medai-viewer-state') as ViewerState) || 'connecting';
  }

  protected onAfterAttach(): void {
    if (!this.started) {
      this.started = true;
      void this.load();
    }
  }

  private setState(state: ViewerState, message = ''): void {
    this.node.setAttribute('data-medai-viewer-state', state);
    this.message.textContent = message;
    this.message.classList.toggle('medai-mod-error', state === 'error');
    this.message.hidden = !message;
  }

  private fail(message: string): void {
    if (this.isDisposed) return;
    this.setState('error', message);
    Notification.error(`MedAI Viewer: ${message}`, { autoClose: 8000 });
  }

  private async load(): Promise<void> {
    const query: Record<string, string> = { path: this.path };
    if (this.labels) query.labels = this.labels;
    const render = loadViewer();
    let response: Response;
    try {
      response = await request('volume', { signal: this.abort.signal }, query);
    } catch (err) {
      if (!this.abort.signal.aborted) this.fail(`could not reach the server: ${describeError(err)}`);
      return;
    }
    if (!response.ok) {
      this.fail(`${this.path}: ${await errorMessage(response)}`);
      return;
    }
    if (!response.body) {
      this.fail('the browser gave no response stream');
      return;
    }
    let renderFn: RenderFn;
    try {
      renderFn = await render;
    } catch (err) {
      this.fail(`could not load the viewer module: ${describeError(err)}`);
      return;
    }
    const reader = response.body.getReader();
    const parser = new FrameParser();
    let rendered = false;
    try {
      for (;;) {
        const { done, value } = await reader.read();
        if (done) break;
        for (const frame of parser.push(value)) {
          if (!rendered) {
            if (!frame.message || frame.message.type !== 'state') {
              throw new Error(`stream does not start with a state frame (got ${JSON.stringify(frame.message?.type)})`);
            }
            this.applyState(frame.message);
            this.setState('loading');
            const dispose = renderFn({ model: this.model as AnyModel, el: this.host });
            this.cleanup = typeof dispose === 'function' ? dispose : null;
            rendered = true;
          } else {
            this.model.emitCustom(frame.message, [frame.payload]);
          }
        }
      }
      if (!rendered) throw new Error('the server closed the stream before sending the volume');
      if (parser.pending) throw new Error(`stream ended inside a frame (${parser.pending} bytes left)`);
    } catch (err) {
      if (!this.abort.signal.aborted) this.fail(`${this.path}: ${describeError(err)}`);
      return;
    }
  }

  /** Initial traits from the first frame; the user's default preset wins over "auto". */
  private applyState(state: Record<string, unknown>): void {
    for (const [k, v] of Object.entries(state)) {
      if (k !== 'type') this.model.set(k, v);
    }
    const preset = this.settings.defaultPreset;
    const sent = String(state.preset ?? 'auto');
    if (preset && preset !== 'auto' && sent === 'auto') {
      this.model.set('preset', preset);
      this.model.set('window', null); // the viewer derives the window from the preset
    }
  }

  dispose(): void {
    if (this.isDisposed) return;
    this.abort.abort();
    if (this.cleanup) {
      try {
        this.cleanup();
      } catch (err) {
        console.warn('[medai-lab] viewer cleanup failed', err);
      }
      this.cleanup = null;
    }
    this.model.off();
    super.dispose();
  }
}

/** Opening a MedAI Viewer never reads the file through the contents API (no fileFormat). */
export class VolumeModelFactory implements DocumentRegistry.IModelFactory<DocumentRegistry.IModel> {
  readonly name = MODEL_FACTORY;
  readonly contentType: Contents.ContentType = 'file';
  readonly fileFormat: Contents.FileFormat = null;
  readonly collaborative = false;
  private disposed = false;

  get isDisposed(): boolean {
    return this.disposed;
  }

  dispose(): void {
    this.disposed = true;
  }

  preferredLanguage(): string {
    return '';
  }

  createNew(options: DocumentRegistry.IModelOptions = {}): DocumentRegistry.IModel {
    const model = new DocumentModel({ languagePreference: options.languagePreference, collaborationEnabled: false });
    model.readOnly = true;
    return model;
  }
}

/**
 * A content provider for the viewer's documents: metadata from the server, marked read-only,
 * and saving refused, so Ctrl+S in a viewer can never overwrite the image with the empty model.
 */
export function readOnlyProvider(drive: Contents.IDrive): IContentProvider {
  return {
    get: async (path: string, options?: Contents.IFetchOptions) => {
      const model = await drive.get(path, { ...options, content: false, contentProviderId: undefined });
      return { ...model, writable: false };
    },
    save: async () => {
      throw new Error('the MedAI Viewer is read-only');
    }
  };
}

export class ViewerFactory extends ABCWidgetFactory<DocumentWidget<ViewerPanel>, DocumentRegistry.IModel> {
  constructor(
    options: DocumentRegistry.IWidgetFactoryOptions<DocumentWidget<ViewerPanel>>,
    private settings: Settings
  ) {
    super(options);
  }

  protected createNewWidget(context: DocumentRegistry.IContext<DocumentRegistry.IModel>): DocumentWidget<ViewerPanel> {
    const content = new ViewerPanel({ path: context.localPath, settings: this.settings });
    const widget = new DocumentWidget({ content, context });
    widget.addClass('medai-ViewerDocument');
    widget.title.icon = viewerIcon;
    return widget;
  }
}

let counter = 0;

/** A main-area viewer for any path (DICOM folders have no document context). */
export function createViewerWidget(path: string, settings: Settings, labels?: string): MainAreaWidget<ViewerPanel> {
  const content = new ViewerPanel({ path, labels, settings });
  const widget = new MainAreaWidget({ content });
  widget.id = `medai-viewer-${++counter}`;
  widget.addClass('medai-ViewerMain');
  widget.title.label = PathExt.basename(path) || '/';
  widget.title.caption = `MedAI Viewer: ${path || '/'}`;
  widget.title.icon = viewerIcon;
  widget.title.closable = true;
  return widget;
}
