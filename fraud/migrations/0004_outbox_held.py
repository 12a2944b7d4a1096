from django.db import migrations

from messaging.api import outbox_held_migration


class Migration(migrations.Migration):
    atomic = False  # the indexes are built CONCURRENTLY (see outbox_held_migration)
    dependencies = [('fraud', '0003_customer_profile')]

    operations = outbox_held_migration(app_label="fraud", model_name="fraudoutbox")
