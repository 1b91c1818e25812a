"""The ``dif`` command line: one module per command group, shared helpers in ``common``."""
