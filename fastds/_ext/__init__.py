"""Compiled extensions, built from ext/*.pyx by setup.py; nothing here is pure Python."""
