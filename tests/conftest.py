"""Shared test setup: this folder is on sys.path, so tests import helpers and fixtures by name."""
