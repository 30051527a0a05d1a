"""Puts ``jobkit`` (job and pod factories shared by the reconciler tests) on the import path."""
