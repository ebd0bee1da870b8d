"""Helpers and fixtures shared by the test folders (no tests here)."""
