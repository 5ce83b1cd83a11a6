"""``sparsebench-report RESULTS_DIR [--out DIR]``: read every run record under RESULTS_DIR and write the
tables (runs.csv, summary.csv, summary.md, summary.tex) and every figure that applies (PNG and PDF).

Exit status: 0 when the report was written (even if some records were skipped, each named with its
reason); 2 when RESULTS_DIR does not exist or holds no completed record; 1 when a figure failed.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from sparsebench.atomic import writable_folder
from sparsebench.errors import SparsebenchError, interrupted


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="sparsebench-report",
        description="Aggregate sparsebench run records into tables (mean with 95%% interval over seeds) and figures.")
    parser.add_argument("results_dir", metavar="RESULTS_DIR", help="folder holding run records (any depth)")
    parser.add_argument("--out", metavar="DIR", help="where to write the report (default: RESULTS_DIR/report)")
    parser.add_argument("--no-figures", action="store_true", help="write the tables only")
    return parser


def main(argv: list[str] | None = None) -> int:
    try:
        return _report(_parser().parse_args(argv))
    except SparsebenchError as error:
        print(f"sparsebench-report: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return interrupted("sparsebench-report", "nothing half-written is left, run the same command again")


def _report(args: argparse.Namespace) -> int:
    results = Path(args.results_dir).expanduser()
    if not results.is_dir():
        problem = "is not a folder" if results.exists() else "does not exist"
        print(f"sparsebench-report: error: {results} {problem}", file=sys.stderr)
        return 2

    from sparsebench.report.aggregate import load_records
    from sparsebench.report.tables import write_tables

    out = writable_folder(Path(args.out).expanduser() if args.out else results / "report", "--out")
    df, skipped = load_records(results)
    for item in skipped:
        print(f"skipped {item}")
    if df.empty:
        print(f"sparsebench-report: error: no completed run record under {results}"
              + (f" ({len(skipped)} skipped)" if skipped else ""), file=sys.stderr)
        return 2
    groups = df["group"].nunique()
    print(f"read {len(df)} runs in {groups} group{'s' if groups != 1 else ''} from {results}"
          + (f"; skipped {len(skipped)} record{'s' if len(skipped) != 1 else ''}" if skipped else ""))

    tables = write_tables(df, out, title=f"Summary of {results.resolve().name}")
    print(f"tables in {out}: " + ", ".join(p.name for p in tables))
    if args.no_figures:
        return 0

    from sparsebench.report.plots import FIGURES

    failed = 0
    drawn = []
    for name, function in FIGURES.items():
        try:
            paths = function(df, out)
        except Exception as error:  # noqa: BLE001 - one bad figure should not cost the others
            failed += 1
            print(f"figure {name} failed: {type(error).__name__}: {error}", file=sys.stderr)
            continue
        if paths:
            drawn.append(name)
    if drawn:
        print(f"figures in {out} (png, pdf): " + ", ".join(drawn))
    else:
        print("no figure applies to these records")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
