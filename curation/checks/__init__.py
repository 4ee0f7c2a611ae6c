"""Data checks: one small registered class per kind of problem (see `findings.py`), run by the validate stage."""
