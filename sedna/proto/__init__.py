"""Wire protocols (``*.proto``) and their generated modules. Regenerate with ``make proto``."""
