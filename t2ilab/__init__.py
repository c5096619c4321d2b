"""t2ilab: text-to-image generation, three ways — the package the course's notebooks import.

Chapters and the modules they explain are listed in the book's introduction; `t2ilab.data` is the start.
"""
import warnings

from tqdm import TqdmWarning

# Without ipywidgets, tqdm.auto falls back to text progress bars in notebooks, and says so in a warning that would
# otherwise open every chapter of the rendered book.
warnings.filterwarnings("ignore", message="IProgress not found", category=TqdmWarning)

__version__ = "0.1.0"
