"""Plot functions: data in, matplotlib figure out. No ipywidgets here.

Each notebook's figures live in their own module (``rlviz.plots.clipping`` ...); the
panels in ``rlviz.widgets`` reuse them and update their artists in place.
"""
