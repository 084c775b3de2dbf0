"""Errors of the HTTP API, answered in OpenAI's error shape:
``{"error": {"message": ..., "type": ..., "param": ..., "code": ...}}``."""

from __future__ import annotations

from tenku.errors import TenkuError


class APIError(TenkuError):
    """An error answered to an HTTP client with ``status`` and OpenAI's error object."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        code: str | None = None,
        param: str | None = None,
        type: str = "invalid_request_error",
        headers: dict[str, str] | None = None,
    ):
        super().__init__(message)
        self.status = status
        self.message = message
        self.code = code
        self.param = param
        self.type = type
        self.headers = headers or {}

    def body(self) -> dict:
        return error_body(self.message, type=self.type, param=self.param, code=self.code)


def error_body(message: str, *, type: str = "invalid_request_error", param: str | None = None, code: str | None = None) -> dict:
    return {"error": {"message": message, "type": type, "param": param, "code": code}}


def bad_request(message: str, *, param: str | None = None, code: str = "invalid_value") -> APIError:
    return APIError(400, message, param=param, code=code)


def not_found(message: str, *, param: str | None = None, code: str = "not_found") -> APIError:
    return APIError(404, message, param=param, code=code)


class JobError(TenkuError):
    """A generation job failed for a reason worth telling the client (stored as the video's ``error``)."""

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code
        self.message = message


class UnsupportedModeError(JobError):
    """The requested generation mode is not available in this build of tenku."""

    def __init__(self, mode: str):
        super().__init__(
            "unsupported_mode",
            f"the '{mode}' mode is not available in this server; use text-to-video (POST /v1/videos), "
            "image-to-video (input_reference), /v1/videos/extensions or /v1/videos/edits",
        )
