"""Tests of the GM edge hub and the Local Controller, with real processes on 127.0.0.1."""
