"""Tests of servers and clients (sedna.service)."""
