"""Shared fixtures. The SynthBirds cache is the user's (or CI's) `$T2ILAB_HOME`: generating it once takes seconds."""
import pytest

from t2ilab.data import synthbirds


@pytest.fixture(scope="session")
def synthbirds_data():
    return synthbirds.load(seed=0, progress=False)


@pytest.fixture
def write_fixture():
    """Writes a CUB-shaped folder under a root: 2 classes x 3 random images (2 train, 1 test each), ten captions
    each (the real CUB-200-2011 loader is tested on it; nothing is downloaded)."""
    import torch

    from t2ilab.data.cub import write_layout

    def write(root):
        images = torch.rand(6, 3, 80, 120) * 2 - 1
        captions = [[f"this bird has a {color} crown and a short bill."] * 9 + ["a bird perched on a branch."]
                    for color in ["red"] * 3 + ["blue"] * 3]
        return write_layout(root, images, [0, 0, 0, 1, 1, 1], captions, [True, True, False] * 2)

    return write
