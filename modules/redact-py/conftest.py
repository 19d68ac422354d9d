"""Lets the tests import app.py (pytest puts this folder on sys.path)."""
