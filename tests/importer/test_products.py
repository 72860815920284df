"""The product service on the configured database (run once on SQLite, once on PostgreSQL)."""

from __future__ import annotations

import pytest
from sqlalchemy import select
from sqlmodel import Session

from importer import products
from importer.db import session_scope
from importer.errors import Conflict, InvalidInput, NotFound
from importer.models import OutboxEvent, Product, ProductCreate, ProductUpdate
from importer.products import ProductFilter


def _create(session: Session, sku: str, name: str = "Widget", description: str = "", is_active: bool = True) -> Product:
    return products.create_product(
        session, ProductCreate(sku=sku, name=name, description=description, is_active=is_active)
    )


def _events() -> list[tuple[str, dict]]:  # type: ignore[type-arg]
    with session_scope() as session:
        rows = session.execute(select(OutboxEvent).order_by(OutboxEvent.id)).scalars()
        return [(row.event_type, row.payload) for row in rows]


def _skus(page: products.ProductPage) -> list[str]:
    return [product.sku for product in page.results]


def test_create_stores_product_and_case_folded_key(session: Session) -> None:
    product = _create(session, "  Ab-1 ", "Name", "Multi\nline")
    session.commit()
    assert product.id is not None
    assert (product.sku, product.sku_key, product.description) == ("Ab-1", "ab-1", "Multi\nline")
    assert product.created_at == product.updated_at
    assert product.created_at.tzinfo is not None


@pytest.mark.parametrize("first, second", [("ABC-1", "abc-1"), ("ÜBER-1", "über-1"), ("STRASSE", "straße")])
def test_duplicate_sku_in_any_letter_case_is_a_conflict(session: Session, first: str, second: str) -> None:
    _create(session, first)
    with pytest.raises(Conflict, match="already exists"):
        _create(session, second)


def test_update_to_another_products_sku_is_a_conflict(session: Session) -> None:
    _create(session, "A-1")
    other = _create(session, "B-1")
    with pytest.raises(Conflict):
        products.update_product(session, other.id, ProductUpdate(sku="a-1"), partial=True)  # type: ignore[arg-type]


def test_update_may_change_the_letter_case_of_its_own_sku(session: Session) -> None:
    product = _create(session, "über-1")
    updated = products.update_product(session, product.id, ProductUpdate(sku="ÜBER-1"), partial=True)  # type: ignore[arg-type]
    assert (updated.sku, updated.sku_key) == ("ÜBER-1", "über-1")


def test_patch_changes_only_named_fields(session: Session) -> None:
    product = _create(session, "P-1", "Old", "Keep me", is_active=False)
    updated = products.update_product(session, product.id, ProductUpdate(name="New"), partial=True)  # type: ignore[arg-type]
    assert (updated.name, updated.description, updated.is_active) == ("New", "Keep me", False)
    assert updated.updated_at > updated.created_at


def test_put_replaces_every_field_and_needs_the_required_ones(session: Session) -> None:
    product = _create(session, "P-1", "Old", "Gone", is_active=False)
    with pytest.raises(InvalidInput, match="name"):
        products.update_product(session, product.id, ProductUpdate(sku="P-1"), partial=False)  # type: ignore[arg-type]
    replaced = products.update_product(
        session, product.id, ProductUpdate(sku="P-2", name="New", description="", is_active=True), partial=False  # type: ignore[arg-type]
    )
    assert (replaced.sku, replaced.name, replaced.description, replaced.is_active) == ("P-2", "New", "", True)


def test_get_update_delete_of_a_missing_product_is_not_found(session: Session) -> None:
    with pytest.raises(NotFound):
        products.get_product(session, 999)
    with pytest.raises(NotFound):
        products.update_product(session, 999, ProductUpdate(name="x"), partial=True)
    with pytest.raises(NotFound):
        products.delete_product(session, 999)


def test_each_change_writes_one_outbox_event() -> None:
    with session_scope() as session:
        product = _create(session, "E-1", "First")
        product_id = product.id
    with session_scope() as session:
        products.update_product(session, product_id, ProductUpdate(name="Second"), partial=True)  # type: ignore[arg-type]
    with session_scope() as session:
        products.delete_product(session, product_id)  # type: ignore[arg-type]
    events = _events()
    assert [event_type for event_type, _ in events] == ["product_created", "product_updated", "product_deleted"]
    assert [payload["name"] for _, payload in events] == ["First", "Second", "Second"]
    assert all(payload["id"] == product_id and payload["sku"] == "E-1" for _, payload in events)


def test_a_failed_change_writes_no_event() -> None:
    with session_scope() as session:
        _create(session, "E-1")
    with pytest.raises(Conflict), session_scope() as session:
        _create(session, "e-1")
    assert [event_type for event_type, _ in _events()] == ["product_created"]


def test_delete_all_counts_and_writes_one_event() -> None:
    with session_scope() as session:
        for number in range(7):
            _create(session, f"D-{number}")
    with session_scope() as session:
        assert products.delete_all_products(session) == 7
    with session_scope() as session:
        assert products.count_products(session) == 0
        assert products.delete_all_products(session) == 0
    assert [event for event, _ in _events()].count("all_products_deleted") == 2
    assert _events()[-2] == ("all_products_deleted", {"deleted": 7})


@pytest.fixture
def catalogue(session: Session) -> None:
    _create(session, "RED-1", "Red Shirt", "Cotton, 100% pure", is_active=True)
    _create(session, "BLUE-2", "Blue Shirt", "Linen_blend", is_active=False)
    _create(session, "GREEN-3", "Green Hat", "Wool hat for winter", is_active=True)
    _create(session, "ÜBER-4", "Über Jacke", "Warm", is_active=True)
    session.commit()


@pytest.mark.usefixtures("catalogue")
@pytest.mark.parametrize(
    "filters, expected",
    [
        (ProductFilter(sku="red"), ["RED-1"]),
        (ProductFilter(name="SHIRT"), ["RED-1", "BLUE-2"]),
        (ProductFilter(description="wool"), ["GREEN-3"]),
        (ProductFilter(search="hat"), ["GREEN-3"]),
        (ProductFilter(search="e-2"), ["BLUE-2"]),
        (ProductFilter(search="linen"), ["BLUE-2"]),
        (ProductFilter(is_active=False), ["BLUE-2"]),
        (ProductFilter(is_active=True, name="shirt"), ["RED-1"]),
        (ProductFilter(description="%"), ["RED-1"]),
        (ProductFilter(description="_"), ["BLUE-2"]),
        (ProductFilter(search="%"), ["RED-1"]),
        (ProductFilter(search="n_b"), ["BLUE-2"]),
        (ProductFilter(name="n%s"), []),
        (ProductFilter(name="\\"), []),
        (ProductFilter(sku="über"), ["ÜBER-4"]),
        (ProductFilter(name="über"), ["ÜBER-4"]),
        (ProductFilter(), ["RED-1", "BLUE-2", "GREEN-3", "ÜBER-4"]),
    ],
)
def test_filters_match_case_insensitive_substrings_literally(
    session: Session, filters: ProductFilter, expected: list[str]
) -> None:
    page = products.list_products(session, filters)
    assert _skus(page) == expected
    assert page.count == len(expected)


@pytest.mark.usefixtures("catalogue")
@pytest.mark.parametrize(
    "ordering, expected",
    [
        ("sku", ["BLUE-2", "GREEN-3", "RED-1", "ÜBER-4"]),
        ("-sku", ["ÜBER-4", "RED-1", "GREEN-3", "BLUE-2"]),
        ("-id", ["ÜBER-4", "GREEN-3", "BLUE-2", "RED-1"]),
        ("is_active,-name", ["BLUE-2", "ÜBER-4", "RED-1", "GREEN-3"]),
        ("-updated_at", ["ÜBER-4", "GREEN-3", "BLUE-2", "RED-1"]),
    ],
)
def test_ordering(session: Session, ordering: str, expected: list[str]) -> None:
    assert _skus(products.list_products(session, ordering=ordering)) == expected


def test_unknown_ordering_field_is_invalid_input(session: Session) -> None:
    with pytest.raises(InvalidInput, match="ordering"):
        products.list_products(session, ordering="bogus")
    with pytest.raises(InvalidInput, match="ordering"):
        products.list_products(session, ordering="sku,-password")


@pytest.mark.usefixtures("catalogue")
def test_pages_are_complete_and_stable(session: Session) -> None:
    first = products.list_products(session, page=1, page_size=3)
    second = products.list_products(session, page=2, page_size=3)
    assert (first.count, first.has_next, second.has_next) == (4, True, False)
    assert _skus(first) + _skus(second) == ["RED-1", "BLUE-2", "GREEN-3", "ÜBER-4"]
    with pytest.raises(NotFound):
        products.list_products(session, page=3, page_size=3)


def test_page_one_of_an_empty_catalogue_is_empty_not_missing(session: Session) -> None:
    page = products.list_products(session)
    assert (page.count, page.results, page.has_next) == (0, [], False)
    with pytest.raises(NotFound):
        products.list_products(session, page=2)


@pytest.mark.parametrize("page, page_size", [(0, 10), (1, 0), (1, products.MAX_PAGE_SIZE + 1)])
def test_page_bounds(session: Session, page: int, page_size: int) -> None:
    with pytest.raises(InvalidInput):
        products.list_products(session, page=page, page_size=page_size)


def test_count_is_exact_right_after_changes_from_another_session() -> None:
    with session_scope() as session:
        _create(session, "C-1")
    with session_scope() as session:
        assert products.count_products(session) == 1
    with session_scope() as session:
        session.add(Product(sku="C-2", sku_key="c-2", name="Raw insert"))  # e.g. an import in another process
    with session_scope() as session:
        assert products.count_products(session) == 2
        assert products.list_products(session).count == 2


def test_iter_products_yields_every_match_in_case_insensitive_sku_order(session: Session) -> None:
    for number in reversed(range(25)):
        _create(session, f"{'I' if number % 3 else 'i'}-{number:02}", "Odd" if number % 2 else "Even")
    session.commit()
    found = [product.sku_key for product in products.iter_products(session, ProductFilter(name="odd"), batch_size=4)]
    assert found == [f"i-{number:02}" for number in range(1, 25, 2)]


def test_a_cached_count_is_dropped_when_another_process_changes_the_catalogue(monkeypatch: pytest.MonkeyPatch) -> None:
    from importer import webhooks
    from importer.models import EventType

    monkeypatch.setattr(products, "CACHE_COUNTS_SLOWER_THAN", 0.0)
    with session_scope() as session:
        _create(session, "C-1")
    with session_scope() as session:
        assert products.count_products(session) == 1
        session.add(Product(sku="C-2", sku_key="c-2", name="Written without an event"))
    with session_scope() as session:
        assert products.count_products(session) == 1, "the cache is in use"
        session.add(Product(sku="C-3", sku_key="c-3", name="Imported elsewhere"))
        webhooks.record_event(session, EventType.product_imported, {"created": 1})
    with session_scope() as session:
        assert products.count_products(session) == 3


def test_the_count_cache_keeps_only_the_newest_entries(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(products, "COUNT_CACHE_ENTRIES", 2)
    cache = products._CountCache(ttl=60)
    for number, sku in enumerate(("a", "b", "c")):
        cache.put(ProductFilter(sku=sku), 1, number)
    assert [cache.get(ProductFilter(sku=sku), 1) for sku in ("a", "b", "c")] == [None, 1, 2]
    assert cache.get(ProductFilter(sku="c"), 2) is None, "another catalogue version"
