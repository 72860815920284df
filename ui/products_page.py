"""The Products page: browse, filter, edit, delete and export the catalogue.

The table pages on the server: the browser only ever holds the rows it shows.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Optional
from urllib.parse import urlencode

from nicegui import events, run, ui
from pydantic import ValidationError
from sqlalchemy.exc import SQLAlchemyError
from sqlmodel import Session

from importer import products, search_index
from importer.db import session_scope
from importer.errors import ImporterError, NotFound
from importer.models import NAME_MAX, SKU_MAX, Product, ProductCreate, ProductUpdate
from ui.frame import app_page, confirm, in_database

log = logging.getLogger(__name__)

PAGE_SIZE = 25
PAGE_SIZE_CHOICES = "[10, 25, 50, 100]"
DEBOUNCE_MS = 350
ACTIVE_CHOICES = {"all": "All", "active": "Active only", "inactive": "Inactive only"}
EXPORT_PATH = "/api/products/export/"

COLUMNS = [
    {"name": "sku", "label": "SKU", "field": "sku", "sortable": True, "align": "left"},
    {"name": "name", "label": "Name", "field": "name", "sortable": True, "align": "left"},
    {"name": "description", "label": "Description", "field": "description", "align": "left",
     "classes": "ellipsis", "style": "max-width: 28rem", "headerStyle": "max-width: 28rem"},
    {"name": "is_active", "label": "Active", "field": "is_active", "sortable": True, "align": "center"},
    {"name": "updated_at", "label": "Updated (UTC)", "field": "updated_at", "sortable": True, "align": "left"},
    {"name": "actions", "label": "", "field": "id", "align": "right"},
]

ACTIVE_CELL = """
<q-td :props="props">
  <q-icon :name="props.value ? 'check_circle' : 'cancel'" :color="props.value ? 'positive' : 'grey-6'" size="sm">
    <q-tooltip>{{ props.value ? 'Active' : 'Inactive' }}</q-tooltip>
  </q-icon>
</q-td>
"""
DESCRIPTION_CELL = """
<q-td :props="props" :title="props.value">{{ props.value }}</q-td>
"""
ACTIONS_CELL = """
<q-td :props="props" auto-width class="text-no-wrap">
  <q-btn flat round dense icon="edit" @click="$parent.$emit('edit', props.row)"><q-tooltip>Edit</q-tooltip></q-btn>
  <q-btn flat round dense icon="delete" color="negative" @click="$parent.$emit('delete', props.row)">
    <q-tooltip>Delete</q-tooltip>
  </q-btn>
</q-td>
"""


def _given(text: Optional[str]) -> Optional[str]:
    """A filter box's text, or None when it is empty (clearing a box sets None)."""
    return (text or "").strip() or None


@dataclass
class Filters:
    sku: Optional[str] = None
    name: Optional[str] = None
    description: Optional[str] = None
    search: Optional[str] = None
    active: str = "all"

    def product_filter(self) -> products.ProductFilter:
        return products.ProductFilter(
            sku=_given(self.sku),
            name=_given(self.name),
            description=_given(self.description),
            search=_given(self.search),
            is_active=None if self.active == "all" else self.active == "active",
        )

    def query(self) -> dict[str, str]:
        """The same filters as API query parameters (for the export download)."""
        chosen = self.product_filter()
        query = {key: getattr(chosen, key) for key in ("sku", "name", "description", "search") if getattr(chosen, key)}
        if chosen.is_active is not None:
            query["is_active"] = "true" if chosen.is_active else "false"
        return query

    @property
    def any(self) -> bool:
        return bool(self.query())


def _ordering(pagination: dict[str, Any]) -> Optional[str]:
    sort_by = pagination.get("sortBy")
    if not sort_by:
        return None
    return f"-{sort_by}" if pagination.get("descending") else sort_by


def _row(product: Product) -> dict[str, Any]:
    return {
        "id": product.id,
        "sku": product.sku,
        "name": product.name,
        "description": product.description,
        "is_active": product.is_active,
        "updated_at": product.updated_at.strftime("%Y-%m-%d %H:%M"),
    }


def _field_errors(exc: Exception) -> dict[str, str]:
    """`sku: already exists` and pydantic's errors, keyed by the form field they are about."""
    if isinstance(exc, ValidationError):
        return {str(error["loc"][0]): error["msg"].removeprefix("Value error, ") for error in exc.errors()}
    field, separator, message = str(exc).partition(": ")
    return {field: message} if separator and field in ("sku", "name", "description", "is_active") else {}


class ProductEditor:
    """The create/edit dialog; errors from the service appear under the field they concern."""

    def __init__(self, on_saved: Callable[[], Awaitable[None]]) -> None:
        self._on_saved = on_saved
        self._product_id: Optional[int] = None
        with ui.dialog() as self.dialog, ui.card().classes("w-full max-w-lg").mark("product-dialog"):
            self.title = ui.label().classes("text-lg font-semibold")
            self.sku = ui.input("SKU").props(f"outlined counter maxlength={SKU_MAX}").classes("w-full").mark("sku")
            self.name = ui.input("Name").props(f"outlined counter maxlength={NAME_MAX}").classes("w-full")
            self.name.mark("name")
            self.description = ui.textarea("Description").props("outlined autogrow").classes("w-full")
            self.description.mark("description")
            self.active = ui.switch("Active", value=True).mark("active")
            with ui.row().classes("w-full justify-end gap-2"):
                ui.button("Cancel", on_click=self.dialog.close).props("flat").mark("cancel")
                self.save_button = ui.button("Save", on_click=self.save).mark("save")
        self.inputs = {"sku": self.sku, "name": self.name, "description": self.description}

    def open(self, row: Optional[dict[str, Any]] = None) -> None:
        row = row or {}
        self._product_id = row.get("id")
        self.title.text = f"Edit {row['sku']}" if row else "New product"
        self.sku.value, self.name.value = row.get("sku", ""), row.get("name", "")
        self.description.value, self.active.value = row.get("description", ""), row.get("is_active", True)
        self._show_errors({})
        self.dialog.open()

    def _show_errors(self, errors: dict[str, str]) -> None:
        for field, element in self.inputs.items():
            element.error = errors.get(field)

    def _store(self, data: ProductCreate) -> Product:
        with session_scope() as session:
            if self._product_id is None:
                return products.create_product(session, data)
            update = ProductUpdate(**data.model_dump())
            return products.update_product(session, self._product_id, update, partial=False)

    async def save(self) -> None:
        try:
            data = ProductCreate(sku=self.sku.value or "", name=self.name.value or "",
                                 description=self.description.value or "", is_active=bool(self.active.value))
            self.save_button.props("loading")
            product = await run.io_bound(self._store, data)
        except (ValidationError, ImporterError) as exc:
            errors = _field_errors(exc)
            self._show_errors(errors)
            if not errors:
                ui.notify(f"Could not save the product: {exc}", type="negative", multi_line=True)
            return
        except SQLAlchemyError as exc:
            log.warning("saving a product failed: %s", exc)
            ui.notify("Could not save the product: the database did not answer. Please try again.", type="negative")
            return
        finally:
            self.save_button.props(remove="loading")
        self.dialog.close()
        verb = "Created" if self._product_id is None else "Saved"
        ui.notify(f"{verb} {product.sku}.", type="positive")
        await self._on_saved()


class ProductsView:
    """Filters, the paged table and the catalogue-wide actions, wired to the product service."""

    def __init__(self) -> None:
        self.filters = Filters()
        self._latest_load = 0
        self.editor = ProductEditor(on_saved=self.reload)
        self._toolbar()
        self._filter_bar()
        self.summary = ui.label().classes("text-sm text-gray-500").mark("summary")
        self.search_note = ui.label().classes("text-xs text-gray-500").mark("search-index-note")
        self.search_note.set_visibility(False)
        self.table = ui.table(
            columns=COLUMNS, rows=[], row_key="id",
            pagination={"page": 1, "rowsPerPage": PAGE_SIZE, "rowsNumber": 0, "sortBy": None, "descending": False},
        ).classes("w-full").mark("products-table")
        self.table.props(f'flat bordered wrap-cells loading :rows-per-page-options="{PAGE_SIZE_CHOICES}" '
                         'no-data-label="No products match these filters."')
        self.table.add_slot("body-cell-is_active", ACTIVE_CELL)
        self.table.add_slot("body-cell-description", DESCRIPTION_CELL)
        self.table.add_slot("body-cell-actions", ACTIONS_CELL)
        self.table.on("request", self._on_request)
        self.table.on("edit", lambda e: self.editor.open(e.args))
        self.table.on("delete", lambda e: self.ask_delete(e.args))
        with ui.card().classes("w-full items-center py-10").mark("empty-state") as self.empty_state:
            ui.icon("inventory_2", size="xl", color="grey-5")
            ui.label("No products yet — import a CSV").classes("text-lg")
            ui.link("Go to Imports", "/imports").mark("empty-imports-link")
        self.empty_state.set_visibility(False)

    def _toolbar(self) -> None:
        with ui.row().classes("w-full items-center gap-2"):
            ui.button("New product", icon="add", on_click=lambda: self.editor.open()).mark("new-product")
            ui.space()
            ui.button("Export CSV", icon="download", on_click=self.export).props("outline").mark("export")
            ui.button("Delete all products", icon="delete_forever", on_click=self.ask_delete_all).props(
                "outline color=negative").mark("delete-all")

    def _filter_bar(self) -> None:
        with ui.row().classes("w-full items-end gap-2"):
            ui.input("Search all fields").props(f"outlined dense clearable debounce={DEBOUNCE_MS}").classes(
                "min-w-[14rem] grow").bind_value(self.filters, "search").on_value_change(self._filters_changed).mark(
                "filter-search")
            for field, label in (("sku", "SKU"), ("name", "Name"), ("description", "Description")):
                ui.input(label).props(f"outlined dense clearable debounce={DEBOUNCE_MS}").classes("w-40").bind_value(
                    self.filters, field).on_value_change(self._filters_changed).mark(f"filter-{field}")
            ui.select(ACTIVE_CHOICES, label="Status").props("outlined dense").classes("w-40").bind_value(
                self.filters, "active").on_value_change(self._filters_changed).mark("filter-active")

    async def _filters_changed(self) -> None:
        self.table.pagination = {**self.table.pagination, "page": 1}
        await self.reload()

    async def _on_request(self, event: events.GenericEventArguments) -> None:
        await self.load(event.args["pagination"])

    async def reload(self) -> None:
        await self.load(self.table.pagination)

    async def load(self, pagination: dict[str, Any]) -> None:
        page, page_size = int(pagination.get("page") or 1), int(pagination.get("rowsPerPage") or PAGE_SIZE)
        chosen, ordering = self.filters.product_filter(), _ordering(pagination)

        def fetch(session: Session) -> tuple[products.ProductPage, int]:
            try:
                found = products.list_products(session, chosen, page=page, page_size=page_size, ordering=ordering)
            except NotFound:  # the rows of this page were deleted meanwhile: show the last page there is
                last_page = max(1, -(-products.count_products(session, chosen) // page_size))
                found = products.list_products(session, chosen, page=last_page, page_size=page_size, ordering=ordering)
            return found, search_index.pending_count(session)

        self._latest_load += 1
        this_load = self._latest_load
        self.table.props("loading")
        loaded = await in_database("Could not load the products", fetch)
        if this_load != self._latest_load:  # a newer request (say, more typing) owns the table now
            return
        self.table.props(remove="loading")
        if loaded is None:
            return
        result, search_pending = loaded
        self.table.rows = [_row(product) for product in result.results]
        self.table.pagination = {**pagination, "page": result.page, "rowsPerPage": page_size,
                                 "rowsNumber": result.count}
        self.table.update()
        self._show_summary(result.count, search_pending)

    def _show_summary(self, count: int, search_pending: int) -> None:
        empty_catalogue = count == 0 and not self.filters.any
        self.empty_state.set_visibility(empty_catalogue)
        self.table.set_visibility(not empty_catalogue)
        counted = f"{count:,} product" if count == 1 else f"{count:,} products"
        verb = "matches" if count == 1 else "match"
        self.summary.text = f"{counted} {verb} the filters" if self.filters.any else counted
        self.search_note.text = (f"Search index: {search_pending:,} imported products are still being added; "
                                 "searches find them already, a little more slowly.")
        self.search_note.set_visibility(search_pending > 0)

    def ask_delete(self, row: dict[str, Any]) -> None:
        async def delete() -> None:
            def delete_it(session: Session) -> bool:
                products.delete_product(session, row["id"])
                return True

            if await in_database(f"Could not delete {row['sku']}", delete_it):
                ui.notify(f"Deleted {row['sku']}.", type="positive")
            await self.reload()

        confirm(f"Delete {row['sku']}?", f"{row['name']} will be removed from the catalogue. This cannot be undone.",
                "Delete", delete)

    async def ask_delete_all(self) -> None:
        total = await in_database("Could not count the products", products.count_products)
        if total is None:
            return
        if total == 0:
            ui.notify("There are no products to delete.", type="info")
            return

        async def delete_all() -> None:
            deleted = await in_database("Could not delete the products", products.delete_all_products)
            if deleted is not None:
                ui.notify(f"Deleted {deleted:,} product{'' if deleted == 1 else 's'}.", type="positive")
            await self.reload()

        noun = "product" if total == 1 else "products"
        confirm("Delete all products?",
                f"All {total:,} {noun} will be deleted, whatever the filters show. This cannot be undone.",
                f"Delete {total:,} {noun}", delete_all)

    def export(self) -> None:
        query = urlencode(self.filters.query())
        ui.download.from_url(f"{EXPORT_PATH}?{query}" if query else EXPORT_PATH)
        ui.notify("Exporting the matching products as CSV…", type="info")


@app_page("/products", "Products")
async def products_page() -> None:
    await ProductsView().reload()
