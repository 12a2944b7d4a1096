from messaging.api import atomic_on

ALIAS = "orders"
atomic = atomic_on(ALIAS)
