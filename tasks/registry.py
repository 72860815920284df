"""Imports every module that defines tasks, so producers and consumers register the same set."""

import tasks.webhooks  # noqa: F401
import tasks.imports  # noqa: F401
import tasks.search  # noqa: F401
