"""The workspace's figures: pure functions from plain data (the projections' curves and counts) to
an accessible SVG string (``role="img"``, a ``<title>`` and a ``<desc>`` saying what it shows), or to
HTML tables (the safety summary). No JavaScript, no matplotlib; colour-blind-safe colours (Okabe–Ito)
that also differ by dash pattern or marker shape, so a greyscale printout stays readable."""
