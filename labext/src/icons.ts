// Small inline SVG icons for the launcher cards (no external assets).
import { LabIcon } from '@jupyterlab/ui-components';

const svg = (body: string): string =>
  `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 24 24" width="16" height="16">${body}</svg>`;

export const lungIcon = new LabIcon({
  name: 'medai-lab:lung',
  svgstr: svg(
    '<path fill="#2f81f7" d="M11 3h2v7l3.2 2.4c.3-.6.8-1 1.5-1 2 0 4.3 4 4.3 7.6 0 1.7-1 3-2.6 3-2.2 0-4.4-1.3-5.4-3.3V13h-4v5.7C9 20.7 6.8 22 4.6 22 3 22 2 20.7 2 19c0-3.6 2.3-7.6 4.3-7.6.7 0 1.2.4 1.5 1L11 10z"/>'
  )
});

export const liverIcon = new LabIcon({
  name: 'medai-lab:liver',
  svgstr: svg(
    '<path fill="#b5472f" d="M3 8.5C3 6 5 5 7.5 5c4.5 0 9.5.5 12 1.5 1.5.6 1.8 2.2.8 3.6-2.4 3.4-6.6 7.4-10.3 8.7-2.5.9-4.2-.6-5-2.8C4.2 13.7 3 11.3 3 8.5z"/>'
  )
});

export const heartIcon = new LabIcon({
  name: 'medai-lab:heart',
  svgstr: svg(
    '<path fill="#d1242f" d="M12 21s-8.5-5.3-8.5-11.2C3.5 6.9 5.6 5 8 5c1.7 0 3.2 1 4 2.4C12.8 6 14.3 5 16 5c2.4 0 4.5 1.9 4.5 4.8C20.5 15.7 12 21 12 21z"/>'
  )
});

export const pacsIcon = new LabIcon({
  name: 'medai-lab:pacs',
  svgstr: svg(
    '<g class="jp-icon3" fill="#57606a"><rect x="3" y="3" width="14" height="4" rx="1"/><rect x="3" y="9" width="14" height="4" rx="1"/><rect x="3" y="15" width="14" height="4" rx="1"/></g>' +
      '<path class="jp-icon-accent0" fill="#1a7f37" d="M19 11l3 1.2v3.3c0 2.3-1.3 4.2-3 5-1.7-.8-3-2.7-3-5v-3.3z"/>'
  )
});

export const hackathonIcon = new LabIcon({
  name: 'medai-lab:hackathon',
  svgstr: svg(
    '<path fill="#bf8700" d="M7 3h10v2h3v3c0 2.2-1.6 4-3.7 4.4A5 5 0 0 1 13 15.9V18h3v3H8v-3h3v-2.1a5 5 0 0 1-3.3-3.5C5.6 12 4 10.2 4 8V5h3zm-1 4v1c0 1 .6 1.9 1.4 2.2A8 8 0 0 1 7 8V7zm12 0h-1v1c0 .8-.1 1.5-.4 2.2.8-.3 1.4-1.2 1.4-2.2z"/>'
  )
});

export const mlflowIcon = new LabIcon({
  name: 'medai-lab:mlflow',
  svgstr: svg(
    '<g fill="#0194e2"><rect x="3" y="13" width="4" height="8" rx="1"/><rect x="10" y="8" width="4" height="13" rx="1"/><rect x="17" y="3" width="4" height="18" rx="1"/></g>'
  )
});

export const viewerIcon = new LabIcon({
  name: 'medai-lab:viewer',
  svgstr: svg(
    '<g class="jp-icon3" fill="#57606a"><path d="M3 3h8v8H3zm10 0h8v8h-8zM3 13h8v8H3z" opacity=".85"/></g>' +
      '<circle class="jp-icon-accent0" fill="#2f81f7" cx="17" cy="17" r="4"/>'
  )
});
