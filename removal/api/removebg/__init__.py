"""remove.bg's API v1.0 (spec/removebg-v1.md): `POST /v1.0/removebg`, `GET /v1.0/account`,
`POST /v1.0/improve`, and its error JSON. `format.py` registers it (removal/apps.py)."""
