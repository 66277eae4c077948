// "MedAI Viewer": NIfTI / DICOM files and DICOM folders in the main area, rendered by the notebook
// widget's own viewer (the local package `medai-viewer` = medai_lab/widgets/js, its anywidget
// `render` API), fed from the framed stream of `GET medai-lab/api/volume?path=` through a small
// model object (./stream.ts).
import { MainAreaWidget, Notification } from '@jupyterlab/apputils';
import { PathExt } from '@jupyterlab/coreutils';
import { ABCWidgetFactory, DocumentModel, DocumentRegistry, DocumentWidget } from '@jupyterlab/docregistry';
import { Contents, IContentProvider } from '@jupyterlab/services';
import { Widget } from '@lumino/widgets';

import type { AnyModel } from 'medai-viewer';

import { describeError, errorMessage, request } from './api';
import { viewerIcon } from './icons';
import { EditableModel, ILabelSources, addLabelsButton, saveLabelsButton } from './labels';
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
    viewerModule = import('medai-viewer').then(m => m.default.render);
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
  private _model: StreamModel;
  private host: HTMLDivElement;
  private message: HTMLDivElement;
  private abort = new AbortController();
  private cleanup: (() => void) | null = null;
  private started = false;

  constructor(options: { path: string; labels?: string; settings: Settings }) {
    super();
    this.path = options.path;
    this._labels = options.labels ?? '';
    this.settings = options.settings;
    this._model = this.newModel();
    this.addClass('medai-ViewerPanel');
    this.node.setAttribute('data-medai-viewer-path', this.path);
    this.node.setAttribute('data-medai-viewer-labels', this._labels);
    this.message = document.createElement('div');
    this.message.className = 'medai-ViewerPanel-message';
    this.host = document.createElement('div');
    this.host.className = 'medai-ViewerPanel-host';
    this.node.append(this.message, this.host);
    this.setState('connecting', `Loading ${this.path || '/'} \u2026`);
  }

  private _labels: string;
  /** Labels of the last view that loaded, to go back to when new ones cannot be read. */
  private previousLabels: string | null = null;
  private settings: Settings;
  /** Traits the user set in the view shown before a reload (kept on the same grid). */
  private carried: Record<string, unknown> = {};

  /** The model the viewer renders from (a new one when labels are added). */
  get model(): StreamModel {
    return this._model;
  }

  /** The label map shown over the image (path from the server root; '' for none). */
  get labels(): string {
    return this._labels;
  }

  /** Show `path` (a label map) over the image: the volume is streamed again with it. */
  setLabels(path: string): void {
    if (this.isDisposed || path === this._labels) return;
    this.previousLabels = this.state === 'done' ? this._labels : null;
    this._labels = path;
    this.node.setAttribute('data-medai-viewer-labels', path);
    this.carried = {};
    for (const k of ['preset', 'window', 'cursor', 'pane_layout', 'convention']) {
      const v = this._model.get(k);
      if (v !== undefined) this.carried[k] = v;
    }
    this.stop();
    this._model = this.newModel();
    this.host.replaceChildren();
    this.setState('connecting', `Loading ${this.path || '/'} with ${path} \u2026`);
    void this.load();
  }

  private newModel(): StreamModel {
    const model = new EditableModel();
    model.on('change:status', (s: any) => {
      if (model !== this._model) return;
      if (s && s.error) this.setState('error');
      else if (s && s.loading === false && s.level >= 0) this.setState('done');
    });
    return model;
  }

  /** Abort the stream and tear the rendered view down. */
  private stop(): void {
    this.abort.abort();
    this.abort = new AbortController();
    if (this.cleanup) {
      try {
        this.cleanup();
      } catch (err) {
        console.warn('[medai-lab] viewer cleanup failed', err);
      }
      this.cleanup = null;
    }
    this._model.off();
  }

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
    if (this._labels) query.labels = this._labels;
    const render = loadViewer();
    const signal = this.abort.signal;
    const model = this._model;
    let response: Response;
    try {
      response = await request('volume', { signal }, query);
    } catch (err) {
      if (!signal.aborted) this.fail(`could not reach the server: ${describeError(err)}`);
      return;
    }
    if (!response.ok) {
      const message = await errorMessage(response);
      if (signal.aborted) return;
      const back = this.previousLabels;
      if (back !== null && this._labels) {
        // The label map was refused (missing, not on the image's grid ...): say why, show the
        // image as it was before.
        Notification.error(`MedAI Viewer: ${this._labels}: ${message}`, { autoClose: 8000 });
        this.previousLabels = null;
        this.setLabels(back);
        return;
      }
      this.fail(`${this._labels ? `${this.path} + ${this._labels}` : this.path}: ${message}`);
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
            if (signal.aborted) return;
            this.applyState(frame.message);
            this.setState('loading');
            const dispose = renderFn({ model: model as AnyModel, el: this.host });
            this.cleanup = typeof dispose === 'function' ? dispose : null;
            rendered = true;
          } else {
            model.emitCustom(frame.message, [frame.payload]);
          }
        }
      }
      if (!rendered) throw new Error('the server closed the stream before sending the volume');
      if (parser.pending) throw new Error(`stream ended inside a frame (${parser.pending} bytes left)`);
    } catch (err) {
      if (!signal.aborted) this.fail(`${this.path}: ${describeError(err)}`);
      return;
    }
  }

  /**
   * Initial traits from the first frame. The user's default preset wins over the server's
   * automatic choice (`preset_auto`: chosen from the image); after "Add labels" the view keeps
   * the window, cursor and layout the user had.
   */
  private applyState(state: Record<string, unknown>): void {
    const model = this._model;
    for (const [k, v] of Object.entries(state)) {
      if (k !== 'type' && k !== 'preset_auto') model.set(k, v);
    }
    const preset = this.settings.defaultPreset;
    const sent = String(state.preset ?? 'auto');
    if (preset && preset !== 'auto' && (sent === 'auto' || state.preset_auto === true)) {
      model.set('preset', preset);
      model.set('window', null); // the viewer derives the window from the preset
    }
    for (const [k, v] of Object.entries(this.carried)) model.set(k, v);
  }

  dispose(): void {
    if (this.isDisposed) return;
    this.stop();
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
 * A content provider for the viewer's documents: metadata from the server with `writable:
 * false` (JupyterLab then disables Save) and saving refused, so Ctrl+S in a viewer can never
 * overwrite the image with the viewer's empty model. It says nothing about the file itself.
 */
export function readOnlyProvider(drive: Contents.IDrive): IContentProvider {
  return {
    get: async (path: string, options?: Contents.IFetchOptions) => {
      const model = await drive.get(path, { ...options, content: false, contentProviderId: undefined });
      return { ...model, writable: false };
    },
    save: async () => {
      throw new Error('the MedAI Viewer does not save: it never changes the image');
    }
  };
}

/**
 * JupyterLab labels a document whose contents model is not writable "<type> is read-only".
 * The viewer's contents model says `writable: false` only so that Save stays disabled (the
 * viewer edits nothing and must never save its empty model over the image); the file itself
 * may well be writable, so that badge would claim something untrue. It is taken out once
 * JupyterLab has added it (on context ready, before this runs).
 */
function dropReadOnlyBadge(widget: DocumentWidget<ViewerPanel>): void {
  const names = [...widget.toolbar.names()];
  const at = names.indexOf('read-only-indicator');
  if (at >= 0) [...widget.toolbar.children()][at]?.dispose();
}

export class ViewerFactory extends ABCWidgetFactory<DocumentWidget<ViewerPanel>, DocumentRegistry.IModel> {
  constructor(
    options: DocumentRegistry.IWidgetFactoryOptions<DocumentWidget<ViewerPanel>>,
    private settings: Settings,
    private labelSources: ILabelSources
  ) {
    super(options);
  }

  protected createNewWidget(context: DocumentRegistry.IContext<DocumentRegistry.IModel>): DocumentWidget<ViewerPanel> {
    const content = new ViewerPanel({ path: context.localPath, settings: this.settings });
    const widget = new DocumentWidget({ content, context });
    widget.addClass('medai-ViewerDocument');
    widget.title.icon = viewerIcon;
    widget.toolbar.addItem('medai-add-labels', addLabelsButton(content, this.labelSources));
    widget.toolbar.addItem('medai-save-labels', saveLabelsButton(content));
    void context.ready.then(() => dropReadOnlyBadge(widget));
    return widget;
  }
}

let counter = 0;

/** A main-area viewer for any path (DICOM folders have no document context). */
export function createViewerWidget(
  path: string,
  settings: Settings,
  labelSources: ILabelSources,
  labels?: string
): MainAreaWidget<ViewerPanel> {
  const content = new ViewerPanel({ path, labels, settings });
  const widget = new MainAreaWidget({ content });
  widget.toolbar.addItem('medai-add-labels', addLabelsButton(content, labelSources));
  widget.toolbar.addItem('medai-save-labels', saveLabelsButton(content));
  widget.id = `medai-viewer-${++counter}`;
  widget.addClass('medai-ViewerMain');
  widget.title.label = PathExt.basename(path) || '/';
  widget.title.caption = `MedAI Viewer: ${path || '/'}`;
  widget.title.icon = viewerIcon;
  widget.title.closable = true;
  return widget;
}
