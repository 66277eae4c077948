// "Add labels…" in the MedAI Viewer's toolbar: pick a label map (NIfTI; DICOM SEG / RTSTRUCT
// files are read by the same server call) by path relative to the server root, with the likely
// candidates offered: the file browser's selected label files, the MSD twin of the image
// (imagesTr/x.nii.gz -> labelsTr/x.nii.gz) and the label files beside the image. The server
// extension's `volume?path=&labels=` call loads it, confined to the server root like any path.
// "Save labels" asks the view for its edited label volume and posts it to `labels?path=`, which
// writes it beside the image (medai_lab/server/labels_save.py).
import { InputDialog, Notification, ToolbarButton } from '@jupyterlab/apputils';
import { PathExt } from '@jupyterlab/coreutils';
import { Contents } from '@jupyterlab/services';

import { describeError, errorMessage, request } from './api';
import { StreamModel } from './stream';
import type { ViewerPanel } from './viewer';

const LABEL_FILE = /\.(nii|nii\.gz|dcm)$/i;

/** Where suggestions come from: the contents API and the file browser's selection. */
export interface ILabelSources {
  contents: Contents.IManager | null;
  selected: () => string[];
}

/** The MSD twin of an image path (`…/imagesTr/case.nii.gz` -> `…/labelsTr/case.nii.gz`), or ''. */
export function msdTwin(path: string): string {
  const parts = path.split('/');
  const i = parts.lastIndexOf('imagesTr') >= 0 ? parts.lastIndexOf('imagesTr') : parts.lastIndexOf('imagesTs');
  if (i < 0 || i === parts.length - 1) return '';
  parts[i] = parts[i] === 'imagesTr' ? 'labelsTr' : 'labelsTs';
  // nnU-Net names images case_0000.nii.gz; their labels drop the channel suffix.
  parts[parts.length - 1] = parts[parts.length - 1].replace(/_0000(\.nii(\.gz)?)$/i, '$1');
  return parts.join('/');
}

async function exists(contents: Contents.IManager | null, path: string): Promise<boolean> {
  if (!contents || !path) return false;
  try {
    await contents.get(path, { content: false });
    return true;
  } catch {
    return false;
  }
}

async function besides(contents: Contents.IManager | null, image: string): Promise<string[]> {
  if (!contents) return [];
  try {
    const folder = await contents.get(PathExt.dirname(image), { content: true });
    const items = (folder.content as Contents.IModel[]) ?? [];
    return items.filter(i => i.type === 'file' && LABEL_FILE.test(i.name) && i.path !== image).map(i => i.path);
  } catch {
    return [];
  }
}

/** Candidate label paths for `image`, the most likely first (no duplicates). */
export async function suggestions(image: string, sources: ILabelSources): Promise<string[]> {
  const twin = msdTwin(image);
  const out = [
    ...sources.selected().filter(p => LABEL_FILE.test(p) && p !== image),
    ...((await exists(sources.contents, twin)) ? [twin] : []),
    ...(await besides(sources.contents, image))
  ];
  return [...new Set(out)];
}

/** Ask for a label file and show it on `panel` (a path typed by hand is taken as it is). */
export async function addLabels(panel: ViewerPanel, sources: ILabelSources): Promise<void> {
  const items = await suggestions(panel.path, sources);
  const result = await InputDialog.getItem({
    title: 'Add labels',
    label: 'Label map (NIfTI, DICOM SEG or RTSTRUCT), path from the server root:',
    items,
    current: panel.labels || items[0] || '',
    editable: true,
    placeholder: 'e.g. labelsTr/case_001.nii.gz',
    okLabel: 'Add'
  });
  const path = (result.value ?? '').trim().replace(/^\/+/, '');
  if (result.button.accept && path) {
    panel.setLabels(path);
  }
}

/** The toolbar button; `data-medai-add-labels` is the test hook. */
export function addLabelsButton(panel: ViewerPanel, sources: ILabelSources): ToolbarButton {
  const button = new ToolbarButton({
    label: 'Add labels…',
    tooltip: 'Overlay a label map (NIfTI, DICOM SEG, RTSTRUCT) on this image',
    onClick: () => void addLabels(panel, sources)
  });
  button.node.setAttribute('data-medai-add-labels', '');
  return button;
}

/** The view's label volume, as the viewer exports it (PROTOCOL.md "Editing": export_labels). */
export interface ExportedLabels {
  shape: [number, number, number];
  dtype: 'uint8' | 'uint16';
  data: ArrayBuffer;
}

/**
 * The document's model: a StreamModel that also takes the view's answers with buffers (the
 * viewer's `export_labels` reply); edits the view sends are not needed here, since the view
 * keeps the edited volume and exports it on Save.
 */
export class EditableModel extends StreamModel {
  private asked = 0;
  private waiting = new Map<number, { ok: (l: ExportedLabels) => void; no: (e: Error) => void }>();

  send(content: any, _callbacks?: unknown, buffers?: ArrayBuffer[]): void {
    if (content && content.type === 'labels') {
      const w = this.waiting.get(Number(content.id));
      this.waiting.delete(Number(content.id));
      if (!w) return;
      if (content.error || !buffers || !buffers.length) w.no(new Error(String(content.error || 'no labels')));
      else w.ok({ shape: content.shape, dtype: content.dtype, data: buffers[0] });
      return;
    }
    super.send(content);
  }

  /** Ask the view for its label volume (edits included); rejects after `timeoutMs`. */
  exportLabels(timeoutMs = 30_000): Promise<ExportedLabels> {
    const id = ++this.asked;
    return new Promise((ok, no) => {
      const timer = setTimeout(() => {
        this.waiting.delete(id);
        no(new Error('the view did not answer'));
      }, timeoutMs);
      this.waiting.set(id, {
        ok: l => (clearTimeout(timer), ok(l)),
        no: e => (clearTimeout(timer), no(e))
      });
      this.emitCustom({ type: 'export_labels', id });
    });
  }
}

/** zlib (deflate) of `data`, as the `labels` endpoint reads it. */
async function deflate(data: ArrayBuffer): Promise<ArrayBuffer> {
  const stream = new Blob([data]).stream().pipeThrough(new CompressionStream('deflate'));
  return new Response(stream).arrayBuffer();
}

/** Save the view's labels beside the image (NIfTI; + DICOM SEG for DICOM) through the server. */
export async function saveLabels(panel: ViewerPanel): Promise<{ nifti: string; seg: string | null }> {
  const labels = await (panel.model as EditableModel).exportLabels();
  const body = await deflate(labels.data);
  const query = { path: panel.path, shape: labels.shape.join(','), dtype: labels.dtype };
  const response = await request('labels', { method: 'POST', body }, query);
  if (!response.ok) throw new Error(await errorMessage(response));
  return (await response.json()) as { nifti: string; seg: string | null };
}

/** The toolbar button; `data-medai-save-labels` is the test hook, `data-medai-saved` the result. */
export function saveLabelsButton(panel: ViewerPanel): ToolbarButton {
  const button = new ToolbarButton({
    label: 'Save labels',
    tooltip: 'Write the labels beside the image: NIfTI, and DICOM SEG when the image is DICOM',
    onClick: () => {
      button.node.removeAttribute('data-medai-saved');
      saveLabels(panel).then(
        r => {
          const files = r.seg ? `${r.nifti} and ${r.seg}` : r.nifti;
          button.node.setAttribute('data-medai-saved', files);
          Notification.success(`Labels saved: ${files}`, { autoClose: 5000 });
        },
        err => {
          button.node.setAttribute('data-medai-saved', 'error');
          Notification.error(`Save labels: ${describeError(err)}`, { autoClose: 8000 });
        }
      );
    }
  });
  button.node.setAttribute('data-medai-save-labels', '');
  return button;
}
