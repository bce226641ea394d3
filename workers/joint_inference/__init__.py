"""Joint-inference workers: ``cloud`` serves the deep model, ``edge`` runs joint inference."""
