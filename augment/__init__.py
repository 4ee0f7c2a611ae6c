"""Augmentation pipelines for images and audio, declared as plain data.

`augment` knows transforms, noise pools and policies; it knows nothing of DVC, manifests on disk or models.
"""
