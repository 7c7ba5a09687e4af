"""Pixian.AI's API v2 (spec/pixian-v2.md): `POST /api/v2/remove-background`,
`GET /api/v2/account`, and its error JSON. `format.py` registers it (removal/apps.py)."""
