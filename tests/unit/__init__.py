"""Unit tests: pure functions, no servers."""
