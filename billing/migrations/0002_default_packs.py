from decimal import Decimal

from django.db import migrations

# A fresh install offers something on the pricing page; operators edit these in the admin.
DEFAULT_PACKS = [
    ("Starter", Decimal(100), 900, 10),
    ("Standard", Decimal(500), 2900, 20),
    ("Pro", Decimal(2000), 9900, 30),
]


def add_packs(apps, schema_editor):
    CreditPack = apps.get_model("billing", "CreditPack")
    for name, credits, price_cents, order in DEFAULT_PACKS:
        CreditPack.objects.get_or_create(
            name=name,
            defaults={
                "credits": credits,
                "price_cents": price_cents,
                "currency": "usd",
                "validity_days": 365,
                "sort_order": order,
            },
        )


class Migration(migrations.Migration):
    dependencies = [("billing", "0001_initial")]

    operations = [migrations.RunPython(add_packs, migrations.RunPython.noop)]
