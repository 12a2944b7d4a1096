"""Authorizations, captures, voids, refunds and the double-entry ledger."""
