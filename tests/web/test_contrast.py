"""WCAG AA contrast (4.5:1 for text) of the workspace's colours, read from its stylesheet and figures."""

from __future__ import annotations

import re
from pathlib import Path

from pgf_events.web.figures import course

CSS = (Path(course.__file__).parents[1] / "static" / "web.css").read_text()


def luminance(hex_colour: str) -> float:
    channels = [int(hex_colour[i:i + 2], 16) / 255 for i in (1, 3, 5)]
    linear = [c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
    return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]


def contrast(a: str, b: str) -> float:
    hi, lo = sorted((luminance(a), luminance(b)), reverse=True)
    return (hi + 0.05) / (lo + 0.05)


def var(name: str) -> str:
    found = re.search(rf"--{name}:\s*(#[0-9a-fA-F]{{6}})", CSS)
    assert found, name
    return found.group(1)


def test_text_colours_pass_aa_on_their_backgrounds() -> None:
    pairs = [(var(fg), var(bg)) for fg in ("ink", "muted", "accent", "bad", "warn", "good")
             for bg in ("paper", "panel")]
    pairs += [("#ffffff", "#14325a"), ("#dce6f2", "#14325a"), ("#14325a", "#ffffff"),  # header, menu
              (var("accent-ink"), var("accent")), ("#5b3a00", "#fff4d6")]  # buttons, time-travel note
    pairs += [(c, "#ffffff") for c in (*course.COLOURS.values(), course.INFUSION, course.EVENT, course.MUTED)]
    failing = [(fg, bg, round(contrast(fg, bg), 2)) for fg, bg in pairs if contrast(fg, bg) < 4.5]
    assert failing == []
