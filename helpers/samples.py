"""Photos that ship inside installed packages, for the model to classify with no download.

``SAMPLE`` is the one the notebooks send: scikit-learn's ``china.jpg`` (the Summer Palace in Beijing, by
danielbuechele on Flickr, CC BY 2.0, as ``sklearn/datasets/images/README.txt`` says). ``EXPECTED`` is what a
person sees in each photo, as an ImageNet class, and where the model must rank it (the tests check it
against the served predictions): EfficientNet-Lite0 (4.7 M parameters, 75% ImageNet top-1) calls
Grace Hopper's uniform an academic gown first, and the dahlia a daisy (ImageNet has no dahlia).
"""

from __future__ import annotations

from pathlib import Path

SAMPLE = "china.jpg"
CREDIT = "china.jpg: the Summer Palace, Beijing; photo by danielbuechele on Flickr, CC BY 2.0 (shipped with scikit-learn)"
#: photo -> (ImageNet class a person would name, the rank it must reach at least among the predictions)
EXPECTED = {
    "china.jpg": ("palace", 1),
    "flower.jpg": ("daisy", 1),
    "grace_hopper.jpg": ("military uniform", 3),
}


def path(name: str = SAMPLE) -> Path:
    """Where the photo is on this machine: scikit-learn's sample images, or matplotlib's sample data."""
    if name == "grace_hopper.jpg":
        import matplotlib

        return Path(matplotlib.get_data_path()) / "sample_data" / name
    import sklearn

    return Path(sklearn.__file__).parent / "datasets" / "images" / name


def read(name: str = SAMPLE) -> bytes:
    """The photo's bytes (a JPEG)."""
    return path(name).read_bytes()
