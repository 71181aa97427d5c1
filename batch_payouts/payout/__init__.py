"""Paying: the Conekta client, throttle, ledger, pipeline, guards and audit log."""
