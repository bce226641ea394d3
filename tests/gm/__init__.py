"""Tests of the Global Manager."""
