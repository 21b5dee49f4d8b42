"""credflow: a self-hosted credentials service for automation."""

__version__ = "0.1.0"
