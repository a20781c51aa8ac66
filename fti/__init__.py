"""fti: a batch ML platform on the feature / training / inference pattern."""

__version__ = "0.1.0"
