"""The reporter: run records -> one DataFrame -> tables and figures.

- ``load_records(folder) -> (df, skipped)``: every completed ``result.json`` under a folder that counts, one
  row per run, counted once in the folder its identity names (column conventions in
  ``sparsebench.report.aggregate``); ``skipped`` names every other file and why.
- ``summarize(df, metrics=None)`` and ``write_tables(df, out_dir)``: mean, std and 95% t-interval per group.
- ``plots``: one function per figure, each of the DataFrame only (``plot_all`` draws every one that applies).
- ``stats``: intervals over seeds and the rule that turns an interval into a verdict (arrays in, numbers
  out); the claims layer (``sparsebench.claims.checks``) selects the runs of a claim's checks.
"""

from sparsebench.report.aggregate import (
                                          Skipped,
                                          config_columns,
                                          load_records,
                                          make_labels,
                                          metric_columns,
                                          relevant_columns,
                                          select,
)
from sparsebench.report.stats import Interval, t_interval, welch_interval
from sparsebench.report.tables import summarize, write_tables

__all__ = ["Interval", "Skipped", "config_columns", "load_records", "make_labels",
           "metric_columns", "relevant_columns", "select", "summarize", "t_interval", "welch_interval",
           "write_tables"]
