from django.db import migrations

FORWARD = """
CREATE OR REPLACE FUNCTION order_history_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'order history is append-only (% refused)', TG_OP;
END $$;
CREATE TRIGGER order_history_append_only BEFORE UPDATE OR DELETE ON orders_orderhistory
    FOR EACH ROW EXECUTE FUNCTION order_history_append_only();
"""
REVERSE = "DROP TRIGGER IF EXISTS order_history_append_only ON orders_orderhistory;"


class Migration(migrations.Migration):
    dependencies = [("orders", "0002_outbox_notify")]

    operations = [migrations.RunSQL(FORWARD, REVERSE)]
