"""Delivery: channels (one per method that sends codes) and the providers that carry them."""
