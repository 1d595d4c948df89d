"""Operation-approval ceremonies point at their operation (the chain app no longer points at them)."""

import django.db.models.deletion
from django.db import migrations, models


def link_operations(apps, schema_editor):
    ChainOperation = apps.get_model("chain", "ChainOperation")
    Ceremony = apps.get_model("passkeys", "Ceremony")
    for operation_id, ceremony_id in ChainOperation.objects.filter(
        ceremony__isnull=False
    ).values_list("pk", "ceremony_id"):
        Ceremony.objects.filter(pk=ceremony_id).update(operation_id=operation_id)


class Migration(migrations.Migration):
    dependencies = [
        ("passkeys", "0003_onchain_state_and_operation_ceremonies"),
        ("chain", "0003_indexer"),
    ]

    operations = [
        migrations.AddField(
            model_name="ceremony",
            name="operation",
            field=models.ForeignKey(
                blank=True,
                null=True,
                on_delete=django.db.models.deletion.CASCADE,
                related_name="+",
                to="chain.chainoperation",
            ),
        ),
        migrations.RunPython(link_operations, migrations.RunPython.noop),
    ]
