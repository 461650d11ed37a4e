"""Stream incoming bytes to a temporary file, hashing and bounding them on the way.

Files are never held whole in memory: chunks go to disk through a worker thread, and
the provider upload reads them back from the open file.
"""

from __future__ import annotations

import asyncio
import hashlib
import tempfile
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import IO

HEAD_BYTES = 512


class TooLarge(Exception):
    pass


@dataclass
class Spooled:
    file: IO[bytes]
    size: int
    sha256: str
    head: bytes

    def close(self) -> None:
        self.file.close()


async def spool(chunks: AsyncIterator[bytes], max_bytes: int) -> Spooled:
    digest = hashlib.sha256()
    size = 0
    head = b""
    file = tempfile.TemporaryFile(prefix="commander-upload-")
    try:
        async for chunk in chunks:
            size += len(chunk)
            if size > max_bytes:
                raise TooLarge()
            if len(head) < HEAD_BYTES:
                head += chunk[: HEAD_BYTES - len(head)]
            digest.update(chunk)
            await asyncio.to_thread(file.write, chunk)
        await asyncio.to_thread(file.seek, 0)
    except BaseException:
        file.close()
        raise
    return Spooled(file, size, digest.hexdigest(), head)
