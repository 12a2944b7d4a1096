"""Stock, prices and reservations (soft locks with a TTL)."""
