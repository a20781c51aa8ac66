"""Batch inference steps: skew guard, scoring, writing prediction slices."""
