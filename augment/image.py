"""Image pipelines on albumentations: a compact spec becomes an `A.Compose`, run from a seed.

A spec entry is `{name: <albumentations class name>, **arguments}`; it is built through albumentations'
own serialization (`A.from_dict` with `__class_fullname__`), strictly, so misspelled arguments fail.
Every call reseeds the compose, so the output depends only on (image, seed).
"""

from __future__ import annotations

import copy
import difflib
import inspect
import operator
from collections.abc import Mapping, Sequence
from typing import Any

import albumentations as A
import numpy as np
from albumentations.core import transforms_interface
from albumentations.core.serialization import SERIALIZABLE_REGISTRY

from augment.rng import derive_seed

# Applied-parameter arrays up to this many values are recorded in full (kernels, matrices); larger ones
# (noise maps, displacement fields) are summarized: replay re-runs from the seed and does not need them.
MAX_RECORDED_VALUES = 64

IMAGE_TRANSFORMS: dict[str, type[A.BasicTransform]] = {
    name: cls
    for name, cls in sorted(SERIALIZABLE_REGISTRY.items())
    if isinstance(cls, type)
    and issubclass(cls, A.BasicTransform)
    and not issubclass(cls, A.Transform3D)  # volumes, not images
    and cls.__module__ != transforms_interface.__name__  # the abstract bases
    and not name.startswith(("_", "Base"))  # intermediate bases, registered too
}


def _validates_arguments(cls: type[A.BasicTransform]) -> bool:
    """Whether albumentations checks `cls`'s arguments against a schema (and so accepts `strict`).

    Its metaclass wraps the __init__ of classes that declare their own InitSchema; a few transforms
    (MedianBlur, RandomRotate90, ToSepia, ...) define a plain __init__, which rejects unknown names itself.
    """
    owner = next(klass for klass in cls.__mro__ if "__init__" in vars(klass))
    return "InitSchema" in vars(owner)


def image_transform(name: str, args: Mapping[str, Any]) -> A.BasicTransform:
    """The albumentations transform called `name`, built strictly from its spec arguments.

    A missing `p` takes the class's own default, as `A.<name>(**args)` would.
    """
    cls = IMAGE_TRANSFORMS.get(name)
    if cls is None:
        close = difflib.get_close_matches(name, IMAGE_TRANSFORMS, n=3)
        hint = f"did you mean {', '.join(close)}?" if close else "see the albumentations transform list"
        raise ValueError(f"unknown image transform {name!r}; {hint}")
    if "strict" in args:
        raise ValueError(f"{name}: 'strict' is set by the pipeline, not by the spec")
    fields = {"p": inspect.signature(cls).parameters["p"].default, **args, "__class_fullname__": name}
    if _validates_arguments(cls):
        # Without strict, albumentations only warns about unknown arguments and may fall back to defaults.
        fields["strict"] = True
    try:
        return A.from_dict({"transform": fields})
    except (ValueError, TypeError) as exc:
        raise ValueError(f"{name}: invalid arguments: {exc}") from None


def json_safe(value: Any, where: str = "params") -> Any:
    """Applied parameters as JSON types: numpy scalars to Python, tuples to lists, big arrays summarized."""
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        if value.size <= MAX_RECORDED_VALUES:
            return value.tolist()
        return {
            "shape": list(value.shape),
            "dtype": str(value.dtype),
            "min": float(value.min()),
            "max": float(value.max()),
            "mean": float(value.mean()),
        }
    if isinstance(value, Mapping):
        return {str(k): json_safe(v, f"{where}.{k}") for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(v, f"{where}[{i}]") for i, v in enumerate(value)]
    raise ValueError(f"{where}: a {type(value).__name__} cannot be recorded as JSON")


def _as_image(image: np.ndarray) -> np.ndarray:
    """The image if it is uint8 HxW or HxWxC, else a ValueError saying what is wrong."""
    image = np.asarray(image)
    if image.dtype != np.uint8:
        raise ValueError(f"images must be uint8, got dtype {image.dtype}")
    if image.ndim not in (2, 3) or 0 in image.shape:
        raise ValueError(f"images must be non-empty HxW or HxWxC arrays, got shape {image.shape}")
    return image


class ImagePipeline:
    """Albumentations transforms in sequence; output uint8 of the input's shape.

    Each call seeds the compose and then each transform i from (seed, i, name): albumentations'
    `set_random_seed` gives every child the same seed, which would make their draws move together.
    Holds albumentations state between calls: use one pipeline per thread.
    """

    modality = "image"

    def __init__(self, steps: Sequence[tuple[str, Mapping[str, Any]]]) -> None:
        self._spec = copy.deepcopy([{"name": name, **args} for name, args in steps])
        self.transforms = [image_transform(name, args) for name, args in steps]
        self._compose = A.Compose(self.transforms, p=1.0, save_applied_params=True)

    def __call__(self, x: np.ndarray, seed: int) -> tuple[np.ndarray, list[dict[str, Any]]]:
        """The augmented image and one record per transform (seed, applied flag, parameters)."""
        seed = operator.index(seed)
        image = _as_image(x)
        self._compose.set_random_seed(derive_seed(seed, "compose"))
        for i, transform in enumerate(self.transforms):
            transform.set_random_seed(derive_seed(seed, i, type(transform).__name__))
        data = self._compose(image=image)
        out = self._same_shape(data["image"], image.shape)
        # albumentations lists, in order, exactly the transforms whose params are non-empty: the applied ones.
        tracked = iter(data["applied_transforms"])
        records = []
        for transform in self.transforms:
            name = type(transform).__name__
            params = {"applied": False}
            if transform.params:
                _, applied_params = next(tracked)
                params = {"applied": True, **json_safe(applied_params, name)}
            records.append({"name": name, "seed": seed, "params": params})
        return out, records

    def replay(self, x: np.ndarray, applied: Sequence[Mapping[str, Any]]) -> np.ndarray:
        """The image re-made from the seed stored in the records, which must come from this pipeline."""
        malformed = [r for r in applied if not isinstance(r, Mapping) or "seed" not in r]
        if malformed:
            raise ValueError(f"each record must be a mapping with 'name' and 'seed', got {malformed[0]!r}")
        names = [record.get("name") for record in applied]
        expected = [type(transform).__name__ for transform in self.transforms]
        if names != expected:
            raise ValueError(f"records {names} do not belong to this pipeline, which records {expected}")
        seeds = {record["seed"] for record in applied}
        if len(seeds) > 1:
            raise ValueError(f"records of one call share one seed, got {sorted(seeds)}")
        return self(x, seeds.pop() if seeds else 0)[0]  # no records, no transforms: nothing is drawn

    def to_dict(self) -> list[dict[str, Any]]:
        """The spec this pipeline was built from."""
        return copy.deepcopy(self._spec)

    @staticmethod
    def _same_shape(out: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
        """The output in the input's layout: a channel axis added to a grayscale image is dropped."""
        if len(shape) == 2 and out.shape == (*shape, 1):
            out = out[..., 0]
        if out.shape != shape or out.dtype != np.uint8:
            raise ValueError(
                f"image pipeline turned a {shape} uint8 image into {out.shape} {out.dtype}: "
                "transforms that resize, crop, change channels or dtype are not supported"
            )
        return out
