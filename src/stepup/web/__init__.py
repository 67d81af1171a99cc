"""The web layer: parses, authenticates, renders. Nothing below it knows about HTTP."""
