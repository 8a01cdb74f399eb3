"""Download an image file from a URL, streaming, with progress and sha256 check.

The bytes go to a temporary file in the cache dir while they are hashed; the
file is accepted only when the length matches Content-Length (when the server
sent one) and the sha256 matches the recipe.  Progress lines go to stderr at
most every few seconds (they end up in Ganeti's OS log, so no carriage returns).
"""

from __future__ import annotations

import hashlib
import http.client
import os
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import TextIO

from osdef.disk.units import MiB
from osdef.errors import ImageError
from osdef.images.cachefiles import no_space_or, remove_quietly

CHUNK = MiB
TIMEOUT_S = 60
PROGRESS_EVERY_S = 5.0


class _Progress:
    def __init__(self, label: str, total: int | None, out: TextIO | None) -> None:
        self.label, self.total, self.out = label, total, out
        self.start = self.last = time.monotonic()

    def update(self, done: int, final: bool = False) -> None:
        now = time.monotonic()
        if self.out is None or (not final and now - self.last < PROGRESS_EVERY_S):
            return
        self.last = now
        mib = done / MiB
        rate = mib / max(now - self.start, 1e-6)
        if self.total:
            pct = 100 * done / self.total
            text = f"{pct:3.0f}% ({mib:.0f}/{self.total / MiB:.0f} MiB, {rate:.0f} MiB/s)"
        else:
            text = f"{mib:.0f} MiB ({rate:.0f} MiB/s)"
        print(f"{self.label}: {text}", file=self.out, flush=True)


def download(url: str, sha256: str, dest: Path, *, label: str,
             progress: TextIO | None = sys.stderr) -> None:
    """Fetch url into dest (a new file), verify length and sha256, fsync.

    On any failure dest is removed and ImageError says what went wrong.
    """
    digest = hashlib.sha256()
    done = 0
    try:
        try:
            response = urllib.request.urlopen(url, timeout=TIMEOUT_S)
        except urllib.error.HTTPError as exc:
            raise ImageError(f"download of {url} failed: HTTP {exc.code} {exc.reason}") from None
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise ImageError(f"download of {url} failed: {reason}") from None
        with response:
            length = response.headers.get("Content-Length")
            total = int(length) if length and length.isdigit() else None
            bar = _Progress(label, total, progress)
            with open(dest, "xb") as out:
                while True:
                    try:
                        data = response.read(CHUNK)
                    except http.client.IncompleteRead as exc:
                        data = exc.partial
                        digest.update(data)
                        done += len(data)
                        raise ImageError(_truncated(url, done, total)) from None
                    except (OSError, http.client.HTTPException) as exc:
                        raise ImageError(f"download of {url} failed after {done} bytes: "
                                         f"{exc}") from None
                    if not data:
                        break
                    digest.update(data)
                    out.write(data)
                    done += len(data)
                    bar.update(done)
                out.flush()
                os.fsync(out.fileno())
            bar.update(done, final=True)
        if total is not None and done != total:
            raise ImageError(_truncated(url, done, total))
        got = digest.hexdigest()
        if got != sha256:
            raise ImageError(f"download of {url}: sha256 is {got}, the recipe expects {sha256}; "
                             "the file was not stored")
    except ImageError:
        remove_quietly(dest)
        raise
    except OSError as exc:
        remove_quietly(dest)
        raise no_space_or(exc, dest.parent, f"download of {url}") from None
    except BaseException:
        remove_quietly(dest)
        raise


def _truncated(url: str, done: int, total: int | None) -> str:
    of = f" of {total}" if total is not None else ""
    return f"download of {url} truncated: got {done}{of} bytes; the file was not stored"
