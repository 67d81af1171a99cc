"""Delivery: channels (sms, email, whatsapp) and the providers that carry them."""
