"""Shared messaging kernel: outbox, relay, inbox, retries, dead letters."""
