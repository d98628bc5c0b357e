"""The fine-tuning routes of the model server (OpenAI's `/v1/fine_tuning/jobs` shape) over `FineTuningJobs`."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, Body

from model.serving.fine_tuning import FineTuningJobs, JobError


def jobs_router(jobs: FineTuningJobs, api_error: Callable[..., Exception]) -> APIRouter:
    """Routes that turn `JobError` into the server's OpenAI-shaped `api_error`."""
    router = APIRouter(prefix="/v1/fine_tuning/jobs")

    def call(action: Any, *args: Any) -> Any:
        try:
            return action(*args)
        except JobError as exc:
            headers = {"Retry-After": str(exc.retry_after)} if exc.retry_after else None
            kind = "NotFoundError" if exc.status == 404 else "invalid_request_error"
            raise api_error(exc.status, exc.message, kind=kind, param=exc.param, headers=headers) from exc

    @router.post("")
    def create(body: Any = Body(...)) -> dict[str, Any]:  # noqa: B008 - FastAPI's way to take a raw JSON body
        job: dict[str, Any] = call(jobs.create, body)
        return job

    @router.get("")
    def list_jobs(limit: int = 20) -> dict[str, Any]:
        return {"object": "list", "data": jobs.recent(limit), "has_more": False}

    @router.get("/{job_id}")
    def get(job_id: str) -> dict[str, Any]:
        job: dict[str, Any] = call(jobs.get, job_id)
        return job

    @router.get("/{job_id}/events")
    def events(job_id: str) -> dict[str, Any]:
        return {"object": "list", "data": call(jobs.events, job_id), "has_more": False}

    @router.post("/{job_id}/cancel")
    def cancel(job_id: str) -> dict[str, Any]:
        job: dict[str, Any] = call(jobs.cancel, job_id)
        return job

    return router
