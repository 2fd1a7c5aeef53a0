"""Bananas: a Redis-backed distributed task queue."""
