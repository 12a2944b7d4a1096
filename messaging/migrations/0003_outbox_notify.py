from django.db import migrations

from messaging.api import notify_trigger_sql

forward, reverse = notify_trigger_sql("messaging_outbox")


class Migration(migrations.Migration):
    dependencies = [("messaging", "0002_kernel_outbox")]

    operations = [migrations.RunSQL(forward, reverse)]
