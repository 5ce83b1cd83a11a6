"""``sparsebench-report [results_dir=DIR] [out=DIR] [figures=false]``: read every run record under
results_dir (default: results, as for sparsebench) and write the tables (runs.csv, summary.csv, summary.md,
summary.tex) and every figure that applies (PNG and PDF) to out (default: <results_dir>/report).

The settings are key=value, as for sparsebench and sparsebench-claims (Hydra's override grammar: quote a
path with spaces or commas, results_dir='runs (copy)'). figures=false writes the tables only. --help prints
this, --version the version of sparsebench.

Exit status: 0 when the report was written (even if some records were skipped, each named with its
reason); 1 when a figure failed; 2 for bad input: results_dir does not exist or holds no completed record,
out cannot be written; 130 interrupted.
"""

from __future__ import annotations

import sys
from pathlib import Path

from sparsebench.atomic import writable_folder
from sparsebench.commands import (
    parse_overrides,
    printed_help_or_version,
    run_command,
    split_settings,
    text_setting,
)
from sparsebench.errors import SparsebenchError

PROG = "sparsebench-report"
SETTINGS = ("results_dir", "out", "figures")


def main(argv: list[str] | None = None) -> int:
    return run_command(PROG, lambda: _report(sys.argv[1:] if argv is None else argv),
                       "nothing half-written is left, run the same command again")


def parse(argv: list[str]) -> tuple[Path, Path, bool]:
    """(the folder of records, the report folder, whether to draw figures)."""
    for token in argv:
        if token.startswith("-") or "=" not in token:
            raise SparsebenchError(f"{token!r} is not a setting: write results_dir=DIR, out=DIR or figures=false "
                                   f"(see {PROG} --help)")
    given, rest = split_settings(parse_overrides(argv), SETTINGS, PROG)
    if rest:
        raise SparsebenchError(f"{rest[0].input_line}: {rest[0].key_or_group} is not a setting of {PROG}: its "
                               f"settings are {', '.join(SETTINGS)}")
    folder = text_setting("results_dir", given.get("results_dir"), "results")
    if not folder.strip():
        raise SparsebenchError("results_dir='' is not allowed: name the folder of records, e.g. results_dir=results")
    figures = given.get("figures", True)
    if not isinstance(figures, bool):
        raise SparsebenchError(f"figures={figures!r} is not allowed: true (the default) or false (tables only)")
    results = Path(folder).expanduser()
    out = text_setting("out", given.get("out"))
    return results, Path(out).expanduser() if out else results / "report", figures


def _report(argv: list[str]) -> int:
    if printed_help_or_version(argv, __doc__, PROG):
        return 0
    results, out, figures = parse(argv)
    if not results.is_dir():
        raise SparsebenchError(f"results_dir={results} {'is not a folder' if results.exists() else 'does not exist'}")

    from sparsebench.report.aggregate import load_records
    from sparsebench.report.tables import write_tables

    out = writable_folder(out, "out")
    df, skipped = load_records(results)
    for item in skipped:
        print(f"skipped {item}")
    if df.empty:
        raise SparsebenchError(f"no completed run record under {results}"
                               + (f" ({len(skipped)} skipped)" if skipped else ""))
    groups = df["group"].nunique()
    print(f"read {len(df)} runs in {groups} group{'s' if groups != 1 else ''} from {results}"
          + (f"; skipped {len(skipped)} record{'s' if len(skipped) != 1 else ''}" if skipped else ""))

    tables = write_tables(df, out, title=f"Summary of {results.resolve().name}")
    print(f"tables in {out}: " + ", ".join(p.name for p in tables))
    if not figures:
        return 0

    from sparsebench.report.plots import plot_all
    failures = []

    def failed(name: str, error: Exception) -> None:  # one bad figure should not cost the others
        failures.append(name)
        print(f"figure {name} failed: {type(error).__name__}: {error}", file=sys.stderr)

    drawn = plot_all(df, out, failed=failed)
    if drawn:
        print(f"figures in {out} (png, pdf): " + ", ".join(drawn))
    else:
        print("no figure applies to these records")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
