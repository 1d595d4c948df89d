"""A chain operation names its smart account by address and carries a label: the chain app no
longer points at users, smart-account rows or ceremonies."""

from django.db import migrations, models

LABELS = {
    "deploy_account": "Deploy the smart account",
    "add_passkey": "Add a passkey on chain",
    "remove_passkey": "Remove a passkey on chain",
}


def copy_addresses(apps, schema_editor):
    ChainOperation = apps.get_model("chain", "ChainOperation")
    for operation in ChainOperation.objects.select_related("account"):
        operation.account_address = operation.account.address if operation.account else ""
        operation.label = LABELS.get(operation.kind, "")
        operation.save(update_fields=["account_address", "label"])


class Migration(migrations.Migration):
    dependencies = [
        ("chain", "0003_indexer"),
        ("passkeys", "0004_ceremony_operation"),
        ("accounts", "0005_more_audit_event_kinds"),
    ]

    operations = [
        migrations.AddField(
            model_name="chainoperation",
            name="account_address",
            field=models.CharField(blank=True, max_length=42),
        ),
        migrations.AddField(
            model_name="chainoperation",
            name="label",
            field=models.CharField(blank=True, max_length=200),
        ),
        migrations.RunPython(copy_addresses, migrations.RunPython.noop),
        migrations.RemoveField(model_name="chainoperation", name="account"),
        migrations.RemoveField(model_name="chainoperation", name="user"),
        migrations.RemoveField(model_name="chainoperation", name="ceremony"),
        migrations.RenameField(
            model_name="chainoperation", old_name="account_address", new_name="account"
        ),
        migrations.AlterField(
            model_name="chainoperation",
            name="account",
            field=models.CharField(blank=True, db_index=True, max_length=42),
        ),
        migrations.AlterField(
            model_name="chainoperation",
            name="kind",
            field=models.CharField(max_length=32),
        ),
    ]
