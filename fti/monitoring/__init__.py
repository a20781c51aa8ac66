"""Drift monitoring and reports."""
