// anywidget entry point (and the package entry the JupyterLab extension imports).
import type { AnyModel } from "./types";
import { Viewer } from "./viewer";

export default {
  render({ model, el }: { model: AnyModel; el: HTMLElement }) {
    const v = new Viewer(model, el);
    return () => v.destroy();
  },
};

export type { AnyModel } from "./types";
