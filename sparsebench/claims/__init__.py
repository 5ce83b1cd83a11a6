"""Claims: the catalogue (``catalogue``), the runs they need (``plan``), their verdicts (``evaluate``),
the report (``page``) and the ``sparsebench-claims`` command (``cli``)."""
