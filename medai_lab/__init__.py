"""MedAI Lab: a JupyterLab distribution for medical-imaging AI.

Importing this package stays light: heavy libraries (torch, monai, mlflow, itk) are imported
lazily inside the functions that need them, so kernels and the CLI start fast.
"""

__version__ = "0.1.0"
