"""Plate OCR Studio engine: data import, the attention OCR model, training, evaluation, export.

Nothing here imports streamlit; the dashboard and the command line both call into this package.
"""
