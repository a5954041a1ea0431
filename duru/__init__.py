"""duru: the data platform of Duru Notes."""

__version__ = "0.1.0"
