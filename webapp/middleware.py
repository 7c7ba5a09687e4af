import uuid


class RequestIdMiddleware:
    """Give every request an id, echoed as `X-Request-Id` and used in logs and error bodies."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        request.request_id = uuid.uuid4().hex
        response = self.get_response(request)
        response.setdefault("X-Request-Id", request.request_id)
        return response
