"""The web workspace: server-rendered pages on the ``pgf serve`` application."""
