from commander.store.db import Database
from commander.store.models import Assistant, Job, PendingEmail, StoredFile

__all__ = ["Assistant", "Database", "Job", "PendingEmail", "StoredFile"]
