"""The order aggregate, its saga, and the REST API clients talk to."""
