"""Augmentation pipelines for images and audio, declared as plain data.

`augment` knows transforms, noise pools and policies; it knows nothing of DVC, manifests on disk or models.
"""

import os

# albumentations asks PyPI for a newer version at every import unless told not to; a pipeline must not.
os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")
