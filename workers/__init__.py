"""Ready-made worker programs: ``python -m workers.<feature>.<role>``, configured by the env contract."""
