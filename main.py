"""Product Importer: the command line and the web app.

`python main.py` serves the app (embedded mode unless DATABASE_URL/REDIS_URL say otherwise);
see `python main.py --help` for the other commands. Every command migrates first.
"""

from __future__ import annotations

import argparse
import getpass
import logging
import os
import sys
from collections.abc import Sequence

from importer.config import ConfigError, get_settings

log = logging.getLogger("product_importer")


def _prepare_environment() -> None:
    """NiceGUI reads its storage settings at import time, so they are set before it loads."""
    settings = get_settings()
    os.environ.setdefault("NICEGUI_STORAGE_PATH", str(settings.data_dir / ".nicegui"))
    if settings.redis_url:
        os.environ.setdefault("NICEGUI_REDIS_URL", settings.redis_url)


def _configure_logging() -> None:
    """DEBUG=1 turns on debug logging for the app's own modules."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("alembic").setLevel(logging.WARNING)
    if get_settings().debug:
        for name in ("importer", "api", "ui", "tasks", "product_importer"):
            logging.getLogger(name).setLevel(logging.DEBUG)


def build_app() -> None:
    """Register the REST API, the pages and the in-process queue consumer on NiceGUI's app."""
    from nicegui import app

    import api
    import tasks.registry  # noqa: F401  (producers must know the tasks and their commit hooks)
    import ui
    from importer.db import migrate
    from tasks import consumer

    settings = get_settings()
    migrate()
    api.register(app)
    ui.register(app)
    if not settings.redis_url:
        state: dict[str, object] = {}
        app.on_startup(lambda: state.update(consumer=consumer.start_embedded_consumer()))
        app.on_shutdown(lambda: state.get("consumer") and consumer.stop_embedded_consumer(state["consumer"]))


def serve(host: str | None, port: int | None, native: bool) -> None:
    from nicegui import ui

    settings = get_settings()
    build_app()
    if native:
        from ui.native_import import prepare_native_window

        prepare_native_window()
    ui.run(
        host=host or settings.host,
        port=port or settings.port,
        native=native,
        window_size=(1280, 860) if native else None,
        title="Product Importer",
        favicon="📦",
        storage_secret=settings.secret_key,
        reload=False,
        show=False,
        fastapi_docs={"title": "Product Importer API", "version": "1.0.0"},
        show_welcome_message=True,
    )


def _migrate() -> None:
    from importer.db import migrate

    migrate()


def cmd_migrate(_: argparse.Namespace) -> int:
    _migrate()
    print("Database is up to date.")
    return 0


def cmd_worker(args: argparse.Namespace) -> int:
    from tasks.consumer import run_worker

    _migrate()
    run_worker(args.workers)
    return 0


def cmd_createuser(args: argparse.Namespace) -> int:
    from importer import auth
    from importer.db import session_scope
    from importer.errors import ImporterError

    _migrate()
    password = args.password
    if password is None:
        password = getpass.getpass("Password: ")
        if password != getpass.getpass("Password (again): "):
            print("error: the passwords do not match", file=sys.stderr)
            return 1
    try:
        with session_scope() as session:
            auth.create_user(session, args.username, password)
    except ImporterError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"User {args.username!r} created.")
    return 0


def cmd_apitoken(args: argparse.Namespace) -> int:
    from importer import auth
    from importer.db import session_scope

    _migrate()
    with session_scope() as session:
        user = auth.get_user_by_name(session, args.username)
        if user is None:
            print(f"error: no user named {args.username!r}; create one with createuser", file=sys.stderr)
            return 1
        token = auth.create_token(session, user)
    print(f"API token for {args.username!r} (shown once; store it now):")
    print(token)
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    serve(args.host, args.port, args.native)
    return 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="main.py", description="Product Importer")
    commands = parser.add_subparsers(dest="command")

    def add_serve_options(target: argparse.ArgumentParser) -> None:
        target.add_argument("--host", help="address to listen on (default: HOST or 127.0.0.1)")
        target.add_argument("--port", type=int, help="port to listen on (default: PORT or 8080)")
        target.add_argument("--native", action="store_true", help="open the app in a desktop window")

    add_serve_options(parser)
    add_serve_options(commands.add_parser("serve", help="run the web app (the default)"))
    worker = commands.add_parser("worker", help="run a queue consumer (server mode)")
    worker.add_argument("-w", "--workers", type=int, default=2, help="worker threads (default 2)")
    commands.add_parser("migrate", help="apply database migrations")
    createuser = commands.add_parser("createuser", help="create a user")
    createuser.add_argument("username")
    createuser.add_argument("--password", help="prompted for when absent")
    apitoken = commands.add_parser("apitoken", help="create an API token and print it as the last line")
    apitoken.add_argument("username")
    return parser


HANDLERS = {
    None: cmd_serve,
    "serve": cmd_serve,
    "worker": cmd_worker,
    "migrate": cmd_migrate,
    "createuser": cmd_createuser,
    "apitoken": cmd_apitoken,
}


def main(argv: Sequence[str]) -> int:
    args = _parser().parse_args(argv)
    try:
        _prepare_environment()
        _configure_logging()
        return HANDLERS[args.command](args)
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    if os.environ.get("NICEGUI_USER_SIMULATION"):
        _prepare_environment()
        serve(None, None, False)
    else:
        sys.exit(main(sys.argv[1:]))
