"""Errors in OpenAI's JSON shape, `{"error": {"message", "type", "param", "code"}}`, for every failure.

A client of an OpenAI-compatible server reads this shape (the `openai` package raises its typed
errors from the status and message), so no failure may answer with HTML, plain text or a traceback.
A bug is answered as a 500 with a short message; uvicorn logs its traceback on the server's stderr.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ValidationError

from harness.errors import LadderError
from harness.schema import validation_problem

_TYPES = {
    400: "invalid_request_error",
    401: "invalid_request_error",
    404: "invalid_request_error",
    405: "invalid_request_error",
    413: "invalid_request_error",
    429: "rate_limit_error",
    503: "server_error",
}


class APIError(Exception):
    """A request the server answers with a 4xx or 5xx status and one clear message."""

    def __init__(self, status: int, message: str, *, param: str | None = None, code: str | None = None):
        super().__init__(message)
        self.status = status
        self.message = message
        self.param = param
        self.code = code

    def body(self) -> dict[str, Any]:
        """The OpenAI error object."""
        return error_body(self.status, self.message, self.param, self.code)


class ClientGone(Exception):
    """The client disconnected before its answer was ready: nobody is left to answer."""


def error_body(status: int, message: str, param: str | None = None, code: str | None = None) -> dict[str, Any]:
    """`{"error": {...}}` with the type OpenAI uses for this status."""
    kind = _TYPES.get(status, "server_error" if status >= 500 else "invalid_request_error")
    return {"error": {"message": message, "type": kind, "param": param, "code": code}}


def from_validation(error: ValidationError, model: type[BaseModel]) -> APIError:
    """The first problem of a request body, as a 400 naming the field (never a branch of a union type)."""
    field, message, detail = validation_problem(error, model)
    if detail["type"] == "extra_forbidden":
        message = "unknown field (not an OpenAI option this server understands)"
    elif detail["type"] == "missing":
        message = "required"
    return APIError(400, f"{field or 'body'}: {message}", param=field or None, code="invalid_value")


def install_handlers(app: Any) -> None:
    """Route every error to the OpenAI shape: ours, Starlette's (404, 405) and unexpected ones (500)."""
    from fastapi.responses import JSONResponse, Response
    from starlette.exceptions import HTTPException
    from starlette.requests import ClientDisconnect

    async def api_error(request: Any, error: Exception) -> Any:
        assert isinstance(error, APIError)
        return JSONResponse(error.body(), status_code=error.status, headers=_auth_header(error.status))

    async def http_error(request: Any, error: Exception) -> Any:
        assert isinstance(error, HTTPException)
        message = {404: f"no route {request.url.path}", 405: f"{request.method} is not allowed on {request.url.path}"}
        text = message.get(error.status_code, str(error.detail))
        return JSONResponse(error_body(error.status_code, text), status_code=error.status_code)

    async def gone(request: Any, error: Exception) -> Any:
        return Response(status_code=499)  # nginx's "client closed request": never sent, only logged

    async def failed(request: Any, error: Exception) -> Any:  # e.g. an adapter that no longer loads
        return JSONResponse(error_body(500, str(error)), status_code=500)

    async def unexpected(request: Any, error: Exception) -> Any:  # Starlette re-raises it: uvicorn logs the traceback
        return JSONResponse(error_body(500, "internal error: the server's log has the details"), status_code=500)

    app.add_exception_handler(APIError, api_error)
    app.add_exception_handler(HTTPException, http_error)
    app.add_exception_handler(ClientGone, gone)
    app.add_exception_handler(ClientDisconnect, gone)  # gone while its body was still arriving
    app.add_exception_handler(LadderError, failed)
    app.add_exception_handler(Exception, unexpected)


def _auth_header(status: int) -> dict[str, str] | None:
    return {"WWW-Authenticate": "Bearer"} if status == 401 else None
