"""The notebook layer: the only place IPython and ipywidgets are imported (magics, the kernel's
session, widgets)."""
