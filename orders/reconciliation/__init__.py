"""Reconciliation: compare what every module recorded, order by order and in
totals, repair what the saga's own compensations can, and keep the results."""
