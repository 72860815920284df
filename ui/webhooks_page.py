"""The Webhooks page: configure receivers, test them, and read (and re-send from) their delivery log."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from datetime import datetime
from typing import Any, Optional

from nicegui import run, ui
from pydantic import ValidationError
from sqlalchemy.exc import SQLAlchemyError
from sqlmodel import Session

from importer.db import session_scope
from importer.errors import ImporterError
from importer.models import (
    EventType,
    WebhookCreate,
    WebhookDeliveryPublic,
    WebhookPublic,
    WebhookTestResult,
    WebhookUpdate,
)
from importer.webhooks import delivery, service
from ui.frame import app_page, confirm, in_database

log = logging.getLogger(__name__)

EVENT_LABELS = {
    EventType.all.value: "All events",
    EventType.product_created.value: "Product created",
    EventType.product_updated.value: "Product updated",
    EventType.product_deleted.value: "Product deleted",
    EventType.product_imported.value: "Import completed",
    EventType.all_products_deleted.value: "All products deleted",
    delivery.TEST_EVENT: "Test event",
}
STATUS_LOOK = {
    delivery.SUCCEEDED: ("Delivered", "positive"),
    delivery.FAILED: ("Failed", "negative"),
    delivery.PENDING: ("Retrying", "warning"),
}
LOG_PAGE_SIZE = 20
LIST_REFRESH_SECONDS = 5.0
LOG_REFRESH_SECONDS = 3.0


def _when(moment: Optional[datetime]) -> str:
    return moment.strftime("%Y-%m-%d %H:%M:%S UTC") if moment else "—"


def _millis(value: Optional[float]) -> str:
    return "—" if value is None else f"{value:,.0f} ms"


def _page_level() -> ui.element:
    """Dialogs hang off the page, not off the element that opened them: that one may be gone by then."""
    return ui.context.client.content


def _show_secret(webhook: WebhookPublic, title: str) -> None:
    """The only time the full secret is on screen: after creation or regeneration."""
    with _page_level(), ui.dialog().props("persistent") as dialog, ui.card().classes("w-full max-w-lg").mark(
            "secret-dialog"):
        ui.label(title).classes("text-lg font-semibold")
        ui.label("Copy the signing secret now: it will not be shown again. Receivers use it to verify "
                 "the webhook-signature header (Standard Webhooks).").classes("text-sm")
        ui.input("Signing secret", value=webhook.secret).props("readonly outlined").classes(
            "w-full font-mono").mark("secret-value")
        with ui.row().classes("w-full justify-end gap-2"):

            def copy() -> None:
                ui.clipboard.write(webhook.secret)
                ui.notify("Secret copied to the clipboard.", type="positive")

            ui.button("Copy", icon="content_copy", on_click=copy).props("flat").mark("copy-secret")
            ui.button("Done", on_click=dialog.close).mark("secret-done")
    dialog.on("hide", dialog.delete)
    dialog.open()


def describe_test(result: WebhookTestResult) -> str:
    if result.ok:
        return f"Test delivered: HTTP {result.status_code} in {_millis(result.response_time_ms)}"
    timing = f" after {_millis(result.response_time_ms)}" if result.status_code is not None else ""
    return f"Test failed: {result.error}{timing}"


class WebhookEditor:
    """The add/edit dialog; an empty secret means "generate one" (add) or "keep it" (edit)."""

    def __init__(self, webhook: Optional[WebhookPublic], on_saved: Callable[[WebhookPublic, bool], None]) -> None:
        self.webhook = webhook
        self.on_saved = on_saved
        with _page_level(), ui.dialog() as self.dialog, ui.card().classes("w-full max-w-lg").mark("webhook-dialog"):
            ui.label("Edit webhook" if webhook else "Add webhook").classes("text-lg font-semibold")
            self.url = ui.input("Receiver URL", value=webhook.url if webhook else "",
                                placeholder="https://example.com/hooks/catalogue").props("outlined autofocus")
            self.url.classes("w-full").mark("webhook-url-input")
            options = {key: label for key, label in EVENT_LABELS.items() if key != delivery.TEST_EVENT}
            self.event = ui.select(options, label="Event", value=webhook.event_type if webhook else EventType.all.value)
            self.event.props("outlined").classes("w-full").mark("webhook-event-input")
            self.enabled = ui.switch("Enabled", value=webhook.is_active if webhook else True).mark("webhook-enabled-input")
            self.secret = ui.input("Signing secret (optional)", password=True, password_toggle_button=True)
            self.secret.props("outlined").classes("w-full").mark("webhook-secret-input")
            hint = "Leave blank to keep the current secret." if webhook else "Leave blank to generate a secure one."
            ui.label(f"{hint} Own secrets: 16+ characters, or whsec_ + base64.").classes("text-xs text-gray-500")
            with ui.row().classes("w-full justify-end gap-2"):
                ui.button("Cancel", on_click=self.dialog.close).props("flat").mark("webhook-cancel")
                self.save_button = ui.button("Save", on_click=self.save).mark("webhook-save")
        self.dialog.on("hide", self.dialog.delete)
        self.dialog.open()

    def _form(self) -> WebhookCreate | WebhookUpdate:
        fields = {"url": self.url.value or "", "event_type": self.event.value, "is_active": self.enabled.value,
                  "secret": self.secret.value or None}
        return (WebhookCreate if self.webhook is None else WebhookUpdate).model_validate(fields)

    def _store(self, session: Session, form: WebhookCreate | WebhookUpdate) -> WebhookPublic:
        if isinstance(form, WebhookCreate):
            return service.to_public(session, [service.create_webhook(session, form)], reveal_secret=True)[0]
        return service.to_public(session, [service.update_webhook(session, self.webhook.id, form)])[0]  # type: ignore[union-attr]

    async def save(self) -> None:
        try:
            form = self._form()
        except ValidationError as exc:
            problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
            ui.notify(f"Could not save the webhook: {problems}", type="negative", multi_line=True)
            return
        self.save_button.props("loading")
        saved = await in_database("Could not save the webhook", lambda session: self._store(session, form))
        self.save_button.props(remove="loading")
        if saved is not None:
            self.dialog.close()
            self.on_saved(saved, self.webhook is None)


class DeliveryLog:
    """One webhook's deliveries, newest first, each with its attempts; failed ones can be re-sent."""

    def __init__(self, webhook: WebhookPublic) -> None:
        self.webhook = webhook
        self.page = 1
        with _page_level(), ui.dialog() as self.dialog, ui.card().classes("w-full max-w-5xl").mark("delivery-log"):
            with ui.row().classes("w-full items-center justify-between no-wrap"):
                with ui.column().classes("gap-0 min-w-0"):
                    ui.label("Delivery log").classes("text-lg font-semibold")
                    ui.label(webhook.url).classes("text-sm text-gray-500 font-mono truncate")
                with ui.row().classes("gap-1 no-wrap"):
                    ui.button(icon="refresh", on_click=self.show.refresh).props("flat round").tooltip("Refresh")
                    ui.button(icon="close", on_click=self.dialog.delete).props("flat round").mark("log-close")
            self.show()
            ui.timer(LOG_REFRESH_SECONDS, self._tick)
        self.dialog.on("hide", self.dialog.delete)
        self.dialog.open()

    def _tick(self) -> None:
        if self.dialog.value:
            self.show.refresh()

    def _load(self) -> tuple[int, list[WebhookDeliveryPublic]]:
        with session_scope() as session:
            return delivery.list_deliveries(session, self.webhook.id, page=self.page, page_size=LOG_PAGE_SIZE)

    @ui.refreshable_method
    def show(self) -> None:
        try:
            count, deliveries = self._load()
        except ImporterError as exc:
            ui.label(str(exc)).classes("text-negative")
            return
        if not deliveries:
            ui.label("No deliveries yet. Product changes and the Test button will show up here.").classes(
                "text-gray-500 py-4").mark("log-empty")
            return
        with ui.column().classes("w-full gap-1"):
            for entry in deliveries:
                self._entry(entry)
        pages = -(-count // LOG_PAGE_SIZE)
        if pages > 1:
            ui.pagination(1, pages, direction_links=True, value=self.page, on_change=self._turn).mark("log-pages")

    def _turn(self, event: Any) -> None:
        self.page = event.value
        self.show.refresh()

    def _entry(self, entry: WebhookDeliveryPublic) -> None:
        label, color = STATUS_LOOK.get(entry.status, (entry.status, "grey"))
        title = f"{_when(entry.created_at)} · {EVENT_LABELS.get(entry.event_type, entry.event_type)} · {label}"
        caption = f"{len(entry.attempts)} attempt(s)"
        if entry.last_error:
            caption += f" · {entry.last_error}"
        if entry.status == delivery.PENDING and entry.next_attempt_at:
            caption += f" · next attempt {_when(entry.next_attempt_at)}"
        with ui.expansion(title, caption=caption, icon="circle").classes("w-full border rounded").props(
                f"dense header-class=text-{color}").mark(f"delivery-{entry.id}"):
            with ui.grid(columns=5).classes("w-full gap-x-4 gap-y-1 text-sm"):
                for heading in ("Attempt", "Time", "Status code", "Response time", "Error"):
                    ui.label(heading).classes("font-semibold")
                for attempt in entry.attempts:
                    ui.label(str(attempt.attempt))
                    ui.label(_when(attempt.attempted_at))
                    ui.label("—" if attempt.status_code is None else str(attempt.status_code))
                    ui.label(_millis(attempt.response_time_ms))
                    ui.label(attempt.error or "—").classes("break-all")
            ui.label(f"webhook-id {entry.message_id}").classes("text-xs text-gray-500 font-mono")
            ui.code(json.dumps(entry.payload, indent=2), language="json").classes("w-full text-xs")
            if entry.status == delivery.FAILED:
                ui.button("Re-send", icon="replay", on_click=lambda e=entry: self._resend(e)).props(
                    "outline").mark(f"resend-{entry.id}")

    async def _resend(self, entry: WebhookDeliveryPublic) -> None:
        queued = await in_database("Could not re-send",
                                    lambda s: delivery.redeliver(s, self.webhook.id, entry.id))
        if queued is not None:
            ui.notify("Re-send queued; the log updates when the receiver answers.", type="info")
            self.show.refresh()


class WebhooksView:
    """The list of webhooks, kept current while the page is open."""

    def __init__(self) -> None:
        self.test_results: dict[int, tuple[bool, str]] = {}
        self.fingerprint: Any = None
        with ui.row().classes("w-full items-center justify-between"):
            ui.label("Signed HTTP POSTs to other systems whenever the catalogue changes.").classes("text-gray-500")
            ui.button("Add webhook", icon="add", on_click=lambda: WebhookEditor(None, self.saved)).mark("add-webhook")
        self.show()
        ui.timer(LIST_REFRESH_SECONDS, self.refresh_if_changed)

    @staticmethod
    def _load() -> list[WebhookPublic]:
        with session_scope() as session:
            return service.to_public(session, service.list_webhooks(session))

    @staticmethod
    def _fingerprint(webhooks: list[WebhookPublic]) -> Any:
        return [(w.id, w.updated_at, w.last_delivery_status, w.last_delivery_at) for w in webhooks]

    async def refresh_if_changed(self) -> None:
        try:
            webhooks = await run.io_bound(self._load)
        except SQLAlchemyError:
            return  # the next tick tries again; the page keeps showing what it had
        if self._fingerprint(webhooks) != self.fingerprint:
            self.show.refresh()

    @ui.refreshable_method
    def show(self) -> None:
        try:
            webhooks = self._load()
        except SQLAlchemyError as exc:
            log.warning("could not load webhooks: %s", exc)
            ui.label("The database did not answer; the list will load when it is back.").classes("text-negative")
            return
        self.fingerprint = self._fingerprint(webhooks)
        if not webhooks:
            with ui.card().classes("w-full items-center py-8").mark("webhooks-empty"):
                ui.icon("webhook", size="xl", color="grey-5")
                ui.label("No webhooks yet").classes("text-lg")
                ui.label("Add one to tell another system about product changes and imports.").classes(
                    "text-gray-500")
            return
        for webhook in webhooks:
            self._row(webhook)

    def _row(self, webhook: WebhookPublic) -> None:
        with ui.card().classes("w-full").mark(f"webhook-{webhook.id}"):
            with ui.row().classes("w-full items-center gap-3"):
                with ui.column().classes("grow gap-0 min-w-0"):
                    ui.label(webhook.url).classes("font-mono break-all").mark(f"url-{webhook.id}")
                    ui.label(f"{EVENT_LABELS[webhook.event_type]} · secret {webhook.secret}").classes(
                        "text-sm text-gray-500")
                    if webhook.disabled_reason and not webhook.is_active:
                        ui.label(webhook.disabled_reason).classes("text-sm text-negative")
                self._last_delivery(webhook)
                ui.switch("Enabled", value=webhook.is_active,
                          on_change=lambda e, w=webhook: self.set_active(w, e.value)).mark(f"toggle-{webhook.id}")
                self._actions(webhook)
            if webhook.id in self.test_results:
                ok, text = self.test_results[webhook.id]
                ui.label(text).classes("text-positive" if ok else "text-negative").mark(f"test-result-{webhook.id}")

    @staticmethod
    def _last_delivery(webhook: WebhookPublic) -> None:
        if webhook.last_delivery_status is None:
            ui.badge("No deliveries yet", color="grey-5").mark(f"last-{webhook.id}")
            return
        label, color = STATUS_LOOK.get(webhook.last_delivery_status, (webhook.last_delivery_status, "grey"))
        code = f" · {webhook.last_status_code}" if webhook.last_status_code else ""
        ui.badge(f"{label}{code}", color=color).mark(f"last-{webhook.id}").tooltip(
            f"Last delivery {_when(webhook.last_delivery_at)}")

    def _actions(self, webhook: WebhookPublic) -> None:
        with ui.row().classes("gap-1 items-center"):
            ui.button("Test", icon="send", on_click=lambda e: self.run_test(webhook, e.sender)).props(
                "outline").mark(f"test-{webhook.id}")
            ui.button("Deliveries", icon="history", on_click=lambda: DeliveryLog(webhook)).props("flat").mark(
                f"log-{webhook.id}")
            ui.button(icon="edit", on_click=lambda: WebhookEditor(webhook, self.saved)).props("flat round").mark(
                f"edit-{webhook.id}").tooltip("Edit")
            ui.button(icon="key", on_click=lambda: self.ask_regenerate(webhook)).props("flat round").mark(
                f"regenerate-{webhook.id}").tooltip("Regenerate secret")
            ui.button(icon="delete", on_click=lambda: self.ask_delete(webhook)).props(
                "flat round color=negative").mark(f"delete-{webhook.id}").tooltip("Delete")

    def saved(self, webhook: WebhookPublic, created: bool) -> None:
        self.show.refresh()
        if created:
            _show_secret(webhook, "Webhook added")
        else:
            ui.notify("Webhook saved.", type="positive")

    async def set_active(self, webhook: WebhookPublic, active: bool) -> None:
        done = await in_database("Could not change the webhook", lambda s: service.update_webhook(
            s, webhook.id, WebhookUpdate(is_active=active)))
        if done is not None:
            ui.notify(f"Webhook {'enabled' if active else 'disabled'}.", type="positive")
        self.show.refresh()

    async def run_test(self, webhook: WebhookPublic, button: ui.button) -> None:
        button.props("loading")
        try:
            result = await run.io_bound(delivery.send_test, webhook.id)
        except ImporterError as exc:
            ui.notify(f"Could not test: {exc}", type="negative")
            return
        finally:
            button.props(remove="loading")
        text = describe_test(result)
        self.test_results[webhook.id] = (result.ok, text)
        ui.notify(text, type="positive" if result.ok else "negative", multi_line=True)
        self.show.refresh()

    def ask_delete(self, webhook: WebhookPublic) -> None:
        async def delete() -> None:
            if await in_database("Could not delete", lambda s: service.delete_webhook(s, webhook.id) or True):
                ui.notify("Webhook deleted.", type="positive")
            self.show.refresh()

        confirm("Delete this webhook?", f"{webhook.url} will receive no more events, and its delivery log is removed.",
             "Delete", delete)

    def ask_regenerate(self, webhook: WebhookPublic) -> None:
        def regenerate(session: Session) -> WebhookPublic:
            return service.to_public(session, [service.regenerate_secret(session, webhook.id)], reveal_secret=True)[0]

        async def confirmed() -> None:
            renewed = await in_database("Could not regenerate the secret", regenerate)
            if renewed is not None:
                _show_secret(renewed, "New signing secret")
                self.show.refresh()

        confirm("Regenerate the signing secret?", "The current secret stops working at once: update the receiver "
             "with the new one.", "Regenerate", confirmed)


@app_page("/webhooks", "Webhooks")
def webhooks_page() -> None:
    WebhooksView()
