"""``pgf export odm`` of one store by two source trees, interleaved rounds (medians), outputs compared.

Each tree runs the same installed ``pgf`` with ``PYTHONPATH`` pointing at it, so two commits
(for example main's, extracted with ``git archive``, and a working tree) are timed side by side on
the same data and the same load::

    mkdir /tmp/main && git archive main | tar -x -C /tmp/main
    python bench/odm_compare.py --db /tmp/log200k.db --tree main=/tmp/main --tree new=. --rounds 5

The files are kept (``OUT/NAME.xml``) and compared without their second line, which names the time
of the export; any difference is an error.
"""

from __future__ import annotations

import argparse
import filecmp
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path


def export(tree: Path, db: str, out: Path) -> float:
    env = {**os.environ, "PYTHONPATH": str(tree.resolve())}
    started = time.perf_counter()
    pgf = Path(sys.executable).parent / "pgf"  # the installed command; PYTHONPATH picks the tree's code
    subprocess.run([str(pgf), "--db", db, "export", "odm", str(out)], env=env, check=True, stderr=subprocess.DEVNULL)
    return time.perf_counter() - started


def without_time(path: Path) -> Path:
    """The file without its second line (the ODM element: FileOID, CreationDateTime, AsOfDateTime)."""
    stripped = path.with_suffix(".cmp")
    with path.open("rb") as src, stripped.open("wb") as dst:
        for n, line in enumerate(src):
            if n != 1:
                dst.write(line)
    return stripped


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", required=True, help="the store (a path or URL)")
    parser.add_argument("--tree", action="append", required=True, metavar="NAME=DIR")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--events", type=int, help="the store's events, for events/s")
    parser.add_argument("--out", type=Path, default=Path("/tmp/odm-compare"))
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    trees = dict(t.split("=", 1) for t in args.tree)
    times: dict[str, list[float]] = {name: [] for name in trees}
    print(f"load before: {os.getloadavg()[0]:.2f}")
    for n in range(args.rounds):
        for name, tree in trees.items():
            times[name].append(export(Path(tree), args.db, args.out / f"{name}.xml"))
        print(f"round {n + 1}: " + ", ".join(f"{name} {t[-1]:.2f} s" for name, t in times.items()), flush=True)
    print(f"load after: {os.getloadavg()[0]:.2f}")
    first = next(iter(trees))
    for name in trees:
        median = statistics.median(times[name])
        rate = f", {args.events / median:,.0f} events/s" if args.events else ""
        ratio = statistics.median(times[first]) / median
        print(f"{name}: median {median:.2f} s{rate}, {ratio:.2f}x {first}")
        if name != first and not filecmp.cmp(without_time(args.out / f"{first}.xml"),
                                             without_time(args.out / f"{name}.xml"), shallow=False):
            sys.exit(f"{name}.xml differs from {first}.xml")
    print("outputs identical (but for the export time)")


if __name__ == "__main__":
    main()
