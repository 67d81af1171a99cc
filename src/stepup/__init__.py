"""StepUp: self-hosted multi-factor authentication for client portals."""

__version__ = "0.1.0"
