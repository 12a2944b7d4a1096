from django.db import migrations

from messaging.api import notify_trigger_sql

forward, reverse = notify_trigger_sql("probe_outbox")


class Migration(migrations.Migration):
    dependencies = [("probe", "0001_initial")]

    operations = [migrations.RunSQL(forward, reverse)]
