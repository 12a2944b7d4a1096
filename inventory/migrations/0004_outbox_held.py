from django.db import migrations

from messaging.api import outbox_held_migration


class Migration(migrations.Migration):
    atomic = False  # the indexes are built CONCURRENTLY (see outbox_held_migration)
    dependencies = [('inventory', '0003_eventual_settlement')]

    operations = outbox_held_migration(app_label="inventory", model_name="inventoryoutbox")
