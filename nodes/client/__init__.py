"""Runware client: async video tasks, uploads, downloads. Knows nothing about PixVerse or ComfyUI.

May import: config, errors.
"""
from .core import RunwareClient, public_base_url
from .envelope import Envelope, MalformedReply, error_of_data_item, exception_for, parse_envelope
from .models import (DEFAULT_BASE_URL, LOGGER_NAME, SDK_NAME, PollPolicy,
                     ProgressEvent, RetryPolicy, SubmitResult, UploadedMedia, VideoResult,
                     recovery_hint)

__all__ = ["RunwareClient", "public_base_url", "PollPolicy", "RetryPolicy", "SubmitResult", "VideoResult",
           "ProgressEvent", "UploadedMedia", "Envelope", "MalformedReply", "parse_envelope",
           "exception_for", "error_of_data_item", "recovery_hint", "DEFAULT_BASE_URL",
           "LOGGER_NAME", "SDK_NAME"]
