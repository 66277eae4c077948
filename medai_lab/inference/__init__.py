"""Apply trained or exported segmentation models to images (torch and MONAI load on use).

>>> from medai_lab.inference import Predictor, predict_folder
>>> Predictor.load("runs/liver/export/model.ts").predict("ct.nii.gz")  # doctest: +SKIP
"""

from medai_lab.inference.batch import PredictReport, predict_folder
from medai_lab.inference.predictor import InferenceError, Predictor

__all__ = ["InferenceError", "PredictReport", "Predictor", "predict_folder"]
