"""The version of lakedet."""

__version__ = "0.1.0"
