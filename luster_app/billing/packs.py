"""The credit packs on sale: the one place they are defined."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Pack:
    """A pack of credits sold at a fixed price (in the currency's smallest unit)."""

    id: str
    name: str
    credits: int
    price: int
    currency: str = "usd"

    @property
    def price_display(self) -> str:
        return format_money(self.price, self.currency)


PACKS: tuple[Pack, ...] = (
    Pack(id="starter", name="Starter", credits=10, price=1200),
    Pack(id="pro", name="Pro", credits=50, price=5000),
    Pack(id="studio", name="Studio", credits=200, price=16000),
)


def find_pack(pack_id: str) -> Pack | None:
    """The pack with this id, or None."""
    return next((pack for pack in PACKS if pack.id == pack_id), None)


def format_money(amount: int, currency: str) -> str:
    """`1200, "usd"` -> "$12.00"; other currencies as "12.00 EUR" (every pack is two-decimal)."""
    if currency.lower() == "usd":
        return f"${amount / 100:,.2f}"
    return f"{amount / 100:,.2f} {currency.upper()}"
