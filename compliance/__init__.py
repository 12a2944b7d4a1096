"""Regional policy: screening of destinations, tax per region."""
