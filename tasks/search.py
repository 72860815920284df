"""Search index task: adds the products an import left out to the trigram indexes (PostgreSQL).

Queued after every import; a periodic run picks up whatever a dead worker left, since the
rows still to index are marked in the database.
"""

from __future__ import annotations

from huey import crontab

from importer import search_index
from tasks import huey


@huey.task()
def index_search() -> None:
    search_index.index_pending()


@huey.periodic_task(crontab(minute="*"))
def sweep_search_index() -> None:
    search_index.index_pending()
