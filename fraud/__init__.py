"""Risk assessment of orders: rules now, a provider later, rules as fallback."""
