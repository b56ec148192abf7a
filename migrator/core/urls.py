"""Where a form may send the browser back to: a path on this site, never another site."""

from __future__ import annotations

from urllib.parse import urlsplit


def local_path(target: str | None) -> str | None:
    """``target`` when it is a local path, else ``None``.

    Browsers read ``/\\host`` as ``//host`` and drop tabs and newlines, so none of them may
    appear: no accepted target leads to another site.
    """
    if (target and target.startswith("/") and not target.startswith("//")
            and "\\" not in target and target.isprintable()
            and not urlsplit(target).netloc):
        return target
    return None
