from django.apps import AppConfig


class OrdersConfig(AppConfig):
    name = "orders"
    verbose_name = "Orders"

    def ready(self) -> None:
        from django.db.models.signals import post_delete, post_save

        from messaging.api import register_scrape_collector
        from orders import admission  # noqa: F401 - registers the check of the admission gate's settings
        from orders.admission.metrics import AdmissionLagCollector
        from orders.client_tokens import forget_clients
        from orders.metrics import OrdersByStateCollector
        from orders.models import ApiClient

        register_scrape_collector(OrdersByStateCollector())
        register_scrape_collector(AdmissionLagCollector())
        post_save.connect(forget_clients, sender=ApiClient, dispatch_uid="orders.forget_clients.save")
        post_delete.connect(forget_clients, sender=ApiClient, dispatch_uid="orders.forget_clients.delete")
