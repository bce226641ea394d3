"""Helpers shared by the tests: free ports, child processes, waiting for sockets."""
