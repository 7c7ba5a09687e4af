"""The upstream Pixian-compatible API, for reseller mode: `client.py` talks to it (the only
code that does), `answers.py` reads what it answers."""

from removal.upstream.answers import UpstreamAccount, UpstreamResult, to_removal_result
from removal.upstream.client import UpstreamClient, account, get_client, remove_background

__all__ = [
    "UpstreamAccount",
    "UpstreamClient",
    "UpstreamResult",
    "account",
    "get_client",
    "remove_background",
    "to_removal_result",
]
