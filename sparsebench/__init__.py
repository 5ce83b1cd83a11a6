"""sparsebench: put published claims about dropout and sparsity to the test."""

__version__ = "0.1.0"
