from django.db import migrations

from messaging.api import outbox_held_migration


class Migration(migrations.Migration):
    atomic = False  # the indexes are built CONCURRENTLY (see outbox_held_migration)
    dependencies = [('orders', '0006_reconciliation')]

    operations = outbox_held_migration(app_label="orders", model_name="ordersoutbox")
