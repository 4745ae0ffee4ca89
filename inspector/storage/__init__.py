"""Storage: every SQL statement of the project lives in this package. No Flask here."""

from .captures import Bin, BinResponse, Capture, CaptureStore, NewCapture, Page, Stored
from .db import Database, StorageError

__all__ = [
    "Bin",
    "BinResponse",
    "Capture",
    "CaptureStore",
    "Database",
    "NewCapture",
    "Page",
    "StorageError",
    "Stored",
]
