"""The landing picture's module: a clear error for a model that is not released, one row per caption and one column
per source in the figure."""
import matplotlib
import pytest
import torch

from t2ilab import gallery

matplotlib.use("Agg")


def test_unreleased_model_is_named():
    with pytest.raises(ValueError, match="not released: no-such-model"):
        gallery.draw(("no-such-model",))


def test_figure_has_a_row_per_caption_and_a_column_per_source():
    captions = ["a small bird with a red crown", "a large bird with blue wings", "a bird"]
    columns = {name: torch.rand(3, 3, 32, 32) * 2 - 1 for name in ("real test bird", "a", "b")}
    fig = gallery.figure(captions, columns)
    axes = fig.axes
    assert len(axes) == 3 * 4  # caption column + three image columns
    titles = [ax.get_title() for ax in axes[:4]]
    assert titles == ["", "real test bird", "a", "b"]
    assert axes[0].texts[0].get_text().replace("\n", " ") == captions[0]
