from django.apps import AppConfig


class OrdersConfig(AppConfig):
    name = "orders"
    verbose_name = "Orders"

    def ready(self) -> None:
        from messaging.api import register_scrape_collector
        from orders.metrics import OrdersByStateCollector

        register_scrape_collector(OrdersByStateCollector())
