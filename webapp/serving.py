"""The production set-up's reverse proxy: nginx's configuration, written by `manage.py serve`.

nginx reads each request whole (headers within CUTOUT_CLIENT_TIMEOUT_S, the body with at most
that long between two reads, up to CUTOUT_MAX_UPLOAD_MB) before gunicorn sees it, and buffers
each answer, so a slow client holds an nginx connection (a few KB) and never a gunicorn
thread. Errors nginx itself produces (malformed or oversized requests, gunicorn down or past
CUTOUT_REQUEST_TIMEOUT_S) answer in the wire format of the path: each format's JSON is
rendered here, once, by the format's own error renderer. Answers from Django pass unchanged.

The access log has the path without its query string (a Baidu `access_token` travels there)
and no header.
"""

from dataclasses import dataclass
from pathlib import Path

from django.conf import settings

from removal import errors
from removal.api import formats
from removal.errors import RemovalError

# nginx's status → the error that answers it (a request nginx refused, or gunicorn failed).
PROXY_ERRORS: dict[int, RemovalError] = {
    400: RemovalError(errors.UNPARSABLE_BODY, "The request is malformed or cannot be read."),
    413: RemovalError(errors.BODY_TOO_LARGE),
    414: RemovalError(errors.UNPARSABLE_BODY, "The request's URL is too long."),
    # 494: nginx's own status for headers larger than large_client_header_buffers.
    494: RemovalError(errors.UNPARSABLE_BODY, "The request's headers are too large."),
    500: RemovalError(errors.INTERNAL),
    502: RemovalError(errors.SERVER_UNAVAILABLE, retry_after=5),
    503: RemovalError(errors.SERVER_UNAVAILABLE, retry_after=5),
    504: RemovalError(errors.REQUEST_TIMEOUT),
}
SITE = "site"  # the pages' errors: plain text


@dataclass(frozen=True)
class Ports:
    host: str
    port: int
    app: str  # gunicorn's address, host:port


def _quote(text: str) -> str:
    """An nginx single-quoted string (no variables: '$' cannot be escaped in nginx 1.22)."""
    if "$" in text:
        raise ValueError(f"an nginx literal cannot hold '$': {text!r}")
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _error_locations() -> list[str]:
    blocks = []
    for wire_format in formats.registered():
        for nginx_status, error in PROXY_ERRORS.items():
            response = formats.error_response(wire_format, error, formats.ErrorContext())
            headers = "".join(
                f"        add_header {name} {_quote(value)} always;\n"
                for name, value in response.items()
                if name.lower() not in {"content-type", "content-length"}
            )
            body = response.content.decode("utf-8")
            blocks.append(
                f"    location = /_cutout_error/{wire_format.name}/{nginx_status} {{\n"
                "        internal;\n"
                "        default_type application/json;\n"
                f"{headers}"
                f"        return {response.status_code} {_quote(body)};\n"
                "    }\n"
            )
    for nginx_status, error in PROXY_ERRORS.items():
        status = 400 if nginx_status in (414, 494) else error.status
        blocks.append(
            f"    location = /_cutout_error/{SITE}/{nginx_status} {{\n"
            "        internal;\n"
            "        default_type text/plain;\n"
            f"        return {status} {_quote(error.message + chr(10))};\n"
            "    }\n"
        )
    return blocks


def _format_map() -> str:
    """$cutout_format: the wire format of the request's path, longest prefix first."""
    lines = ["    map $uri $cutout_format {\n", f"        default {SITE};\n"]
    ordered = sorted(formats.registered(), key=lambda fmt: len(fmt.prefix), reverse=True)
    for wire_format in ordered:
        lines.append(f"        ~^{wire_format.prefix} {wire_format.name};\n")
    lines.append("    }\n")
    return "".join(lines)


def nginx_config(ports: Ports, run_dir: Path) -> str:
    """nginx.conf for `manage.py serve`: listen on ports.host:port, proxy to ports.app, keep
    pid, temporary files and logs under `run_dir`."""
    client_s = settings.CUTOUT_CLIENT_TIMEOUT_S
    request_s = settings.CUTOUT_REQUEST_TIMEOUT_S
    # The views answer an oversized body in the API's format (1004); nginx's cap is a backstop
    # just above theirs, so a body a little over the limit still gets the view's answer.
    body_mb = settings.CUTOUT_MAX_UPLOAD_MB + 1
    error_statuses = " ".join(str(status) for status in PROXY_ERRORS)
    pages = "".join(
        f"        error_page {status} /_cutout_error/$cutout_format/{status};\n"
        for status in PROXY_ERRORS
    )
    return f"""# Written by `manage.py serve` (webapp/serving.py): edits here are overwritten.
worker_processes 1;
pid {run_dir}/nginx.pid;
error_log stderr warn;
events {{
    worker_connections 4096;
}}
http {{
    log_format cutout '$remote_addr - - [$time_local] "$request_method $uri $server_protocol" '
                      '$status $body_bytes_sent $request_time "$http_user_agent" proxy';
    access_log /dev/stdout cutout;
    client_body_temp_path {run_dir}/client_body;
    proxy_temp_path {run_dir}/proxy;
    fastcgi_temp_path {run_dir}/fastcgi;
    uwsgi_temp_path {run_dir}/uwsgi;
    scgi_temp_path {run_dir}/scgi;
    server_tokens off;
    # Slow clients: each read of the headers or the body, and each write of the answer,
    # must progress within this time, or the connection is closed.
    client_header_timeout {client_s}s;
    client_body_timeout {client_s}s;
    send_timeout {client_s}s;
    keepalive_timeout 15s;
    reset_timedout_connection on;
    client_max_body_size {body_mb}m;
    client_body_buffer_size 1m;
    large_client_header_buffers 4 16k;
{_format_map()}
    upstream cutout_app {{
        server {ports.app} max_fails=0;
        keepalive 32;
    }}
    server {{
        listen {ports.host}:{ports.port} backlog=4096;
        # Errors nginx produces ({error_statuses}) answer in the path's wire format.
{pages}
        location / {{
            proxy_pass http://cutout_app;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Host $http_host;
            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
            # The whole body first, then gunicorn; the whole answer buffered, then the client.
            proxy_request_buffering on;
            proxy_buffering on;
            proxy_buffers 64 16k;
            proxy_max_temp_file_size 1024m;
            proxy_connect_timeout 5s;
            proxy_send_timeout {request_s}s;
            proxy_read_timeout {request_s}s;
            # Never send a POST twice: a removal may already be charged.
            proxy_next_upstream off;
        }}
{"".join(_error_locations())}    }}
}}
"""
