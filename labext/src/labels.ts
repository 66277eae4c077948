// "Add labels…" in the MedAI Viewer's toolbar: pick a label map (NIfTI; DICOM SEG / RTSTRUCT
// files are read by the same server call) by path relative to the server root, with the likely
// candidates offered: the file browser's selected label files, the MSD twin of the image
// (imagesTr/x.nii.gz -> labelsTr/x.nii.gz) and the label files beside the image. The server
// extension's `volume?path=&labels=` call loads it, confined to the server root like any path.
import { InputDialog, ToolbarButton } from '@jupyterlab/apputils';
import { PathExt } from '@jupyterlab/coreutils';
import { Contents } from '@jupyterlab/services';

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
