from decimal import Decimal

from django import template

from billing.formatting import format_credits

register = template.Library()


@register.filter(name="credits")
def credits_filter(value: Decimal | None) -> str:
    """A credit amount as on the wire: `1`, `0.25`, never `1E+2` (Decimal.normalize would)."""
    return "" if value is None else format_credits(value)
