"""PostgreSQL backend that keeps each alias inside its own schema."""
