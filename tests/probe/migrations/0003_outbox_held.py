from django.db import migrations

from messaging.api import outbox_held_migration


class Migration(migrations.Migration):
    atomic = False  # the indexes are built CONCURRENTLY (see outbox_held_migration)
    dependencies = [('probe', '0002_outbox_notify')]

    operations = outbox_held_migration(app_label="probe", model_name="probeoutbox")
