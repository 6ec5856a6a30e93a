"""classprobe: classroom technical readiness."""

__version__ = "0.1.0"
