"""The classroom agent: probes, spool, uploader. Never imports the collector."""

__version__ = "0.1.0"
