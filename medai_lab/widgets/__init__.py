"""Notebook viewer: ``view(image, labels=None, prediction=None, preset="auto")``.

Volumes are sliced, windowed and blended in the browser by a bundled ES module (no network);
the kernel only reorients and streams them once. anywidget is imported on first use.
"""

from medai_lab.widgets.api import scene_of, view
from medai_lab.widgets.browser import case_browser

__all__ = ["case_browser", "scene_of", "view"]
