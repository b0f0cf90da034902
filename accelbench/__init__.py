"""accelbench: accuracy and speed of transformer variants, measured together."""

__version__ = "0.1.0"
