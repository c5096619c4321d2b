"""t2ilab: text-to-image generation, three ways — the package the course's notebooks import.

Chapters and the modules they explain are listed in the book's introduction; `t2ilab.data` is the start.
"""
__version__ = "0.1.0"
