"""Figures of the web workspace: pure functions from data to an SVG string (no I/O, no globals),
embedded in the page. ``course.py``: a patient's haematology course; the cohort dashboard's figures
(:mod:`pgf_events.web.cohort_figures` feeds them) are accessible SVG (``role="img"``, a ``<title>``
and a ``<desc>`` saying what it shows) or HTML tables (the safety summary), with no JavaScript and
colour-blind-safe colours (Okabe–Ito) that also differ by dash pattern or marker shape, so a
greyscale printout stays readable."""
