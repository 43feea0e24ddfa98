"""Compiled extensions, built from ext/*.pyx by setup.py, and compiled.json: the hot-path
sources setup.py compiled as they are, by sha256 (fastds/compiled.py)."""
