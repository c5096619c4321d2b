"""Shared fixtures. The SynthBirds cache is the user's (or CI's) `$T2ILAB_HOME`: generating it once takes seconds."""
import pytest

from t2ilab.data import synthbirds


@pytest.fixture(scope="session")
def synthbirds_data():
    return synthbirds.load(seed=0, progress=False)
