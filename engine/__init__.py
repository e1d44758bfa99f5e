"""Plate OCR Studio engine: data import, the attention OCR model, training, evaluation, export.

Nothing here imports streamlit; the dashboard and the command line both call into this package.
"""

import os

# Set before any module of the engine imports TensorFlow: its C++ INFO notes stay out of every
# command's output and training log; warnings and errors still show. (TensorFlow 2.21 still prints
# two notes at import, before its logging is set up: a known TensorFlow issue.)
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
