"""Renderers: draw what the analysis produced (terminal, HTML, JSON). They compute nothing."""
