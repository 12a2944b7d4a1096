from django.db import models

from messaging.api import InboxMessage, OutboxMessage


class ProbeOutbox(OutboxMessage):
    class Meta(OutboxMessage.Meta):
        db_table = "probe_outbox"


class ProbeInbox(InboxMessage):
    class Meta(InboxMessage.Meta):
        db_table = "probe_inbox"


class ProbeEffect(models.Model):
    """One row per applied message: a second effect would be a second row."""

    message_id = models.UUIDField()
    key = models.CharField(max_length=64)
    applied_at = models.DateTimeField(auto_now_add=True)
