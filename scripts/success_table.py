"""The success table of a folder of `eval` reports: one row per report, Wilson 95% intervals.

python scripts/success_table.py runs/bc_ceiling '*/eval*.json'
"""

from __future__ import annotations

import json
import sys
from pathlib import Path


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 2:
        print(__doc__.strip().splitlines()[-1].strip(), file=sys.stderr)
        return 2
    print("| run (report) | success [Wilson 95%] |")
    print("|---|---|")
    for path in sorted(Path(argv[0]).glob(argv[1])):
        report = json.loads(path.read_text())
        lo, hi = report["success_ci95"]
        print(
            f"| {path.parent.name} ({path.stem}) | {report['successes']}/{report['episodes']} = "
            f"{report['success_rate']:.2f} [{lo:.2f}, {hi:.2f}] |"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
