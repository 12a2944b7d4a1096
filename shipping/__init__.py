"""Shipments through a carrier, and fulfilment events."""
