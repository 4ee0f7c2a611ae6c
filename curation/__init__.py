"""Data-centric curation: data sets, slices, training, evaluation, analysis, checklist, review and versions."""

__version__ = "0.1.0"
