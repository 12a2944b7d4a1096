from django.db import migrations

from messaging.api import notify_due_trigger_sql

# The outbox's trigger wakes relays only for rows due now: gathered events are written held and wake nobody.
forward, reverse = notify_due_trigger_sql("messaging_outbox")


class Migration(migrations.Migration):
    dependencies = [("messaging", "0004_outbox_held")]

    operations = [migrations.RunSQL(forward, reverse)]
