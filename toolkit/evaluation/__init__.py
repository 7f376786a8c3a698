"""Metrics, reports and prediction."""
