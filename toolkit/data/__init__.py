"""Readers, label spaces, splits and tokenisation."""
