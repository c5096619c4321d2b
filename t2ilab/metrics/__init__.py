"""Metrics of the evaluation protocol (chapter "How we measure text-to-image models")."""
