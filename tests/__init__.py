"""corpusprov test suite."""
