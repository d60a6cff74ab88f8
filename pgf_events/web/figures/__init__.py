"""Figures of the web workspace: pure functions from data to an SVG string (no I/O, no globals),
embedded in the page. ``course.py``: a patient's haematology course."""
