"""Reading the figures back: parse the SVG, map pixels to data through the plot area's
``data-domain``/``data-range``, and turn H/V step paths into vertices."""

from __future__ import annotations

import itertools
import re
import xml.etree.ElementTree as ET
from collections.abc import Iterator

NS = "{http://www.w3.org/2000/svg}"


def parse(svg: str) -> ET.Element:
    root = ET.fromstring(svg)
    assert root.tag == f"{NS}svg" and root.get("role") == "img"
    title, desc = root.find(f"{NS}title"), root.find(f"{NS}desc")
    assert title is not None and title.text and desc is not None and desc.text
    assert root.get("aria-labelledby") == f"{title.get('id')} {desc.get('id')}"
    return root


def find(root: ET.Element, tag: str, cls: str | None = None) -> list[ET.Element]:
    found = root.iter(f"{NS}{tag}")
    return [e for e in found if cls is None or cls in (e.get("class") or "").split()]


def texts(root: ET.Element) -> list[str]:
    return [e.text or "" for e in root.iter(f"{NS}text")]


class Plot:
    """Pixel <-> data for the figure's plot area."""

    def __init__(self, root: ET.Element) -> None:
        (g,) = find(root, "g", "plot")
        self.x0, self.x1, self.y0, self.y1 = map(float, g.get("data-domain", "").split())
        self.l, self.r, self.b, self.t = map(float, g.get("data-range", "").split())
        self.g = g

    def px(self, x: float) -> float:
        return self.l + (x - self.x0) / (self.x1 - self.x0) * (self.r - self.l)

    def py(self, y: float) -> float:
        return self.b + (y - self.y0) / (self.y1 - self.y0) * (self.t - self.b)

    def data_x(self, px: float) -> float:
        return self.x0 + (px - self.l) / (self.r - self.l) * (self.x1 - self.x0)

    def data_y(self, py: float) -> float:
        return self.y0 + (py - self.b) / (self.t - self.b) * (self.y1 - self.y0)


def vertices(d: str) -> list[tuple[float, float]]:
    """The corner points of a path of M, H, V (and Z) commands."""
    out: list[tuple[float, float]] = []
    x = y = 0.0
    for cmd, args in re.findall(r"([MHVZ])([^MHVZ]*)", d):
        nums = [float(v) for v in args.replace(",", " ").split()]
        if cmd == "M":
            x, y = nums
        elif cmd == "H":
            x = nums[0]
        elif cmd == "V":
            y = nums[0]
        else:
            continue
        out.append((x, y))
    return out


def steps(points: list[tuple[float, float]]) -> Iterator[tuple[float, float]]:
    """The (x, level) of each horizontal run of a step path."""
    for (xa, ya), (xb, yb) in itertools.pairwise(points):
        if ya == yb and xb > xa:
            yield xa, ya
