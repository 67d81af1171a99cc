"""Authentication methods, one package each, all behind the ``Method`` protocol."""
