"""Authentication methods, one module each, all behind the ``Method`` protocol."""
