"""Fugong (复工): a district's work-resumption response platform."""

__version__ = "0.1.0"
