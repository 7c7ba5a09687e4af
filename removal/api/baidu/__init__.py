"""Baidu AI Cloud's 智能抠图 (spec/baidu-segment.md): `POST /rest/2.0/image-process/v1/segment`
and the access tokens it takes, from `/oauth/2.0/token`. Two wire formats (format.py): the
segment endpoint answers every error with HTTP 200 and Baidu's `error_code`; the token
endpoint answers OAuth's `{"error", "error_description"}`."""
