"""`copybot model-server`: the GPU host's API over the configured base model and the registry's adapters."""

from __future__ import annotations

import ipaddress
import logging
from typing import Any

from bot.generation import base_model_path
from bot.settings import Settings
from model.training.registry import AdapterRegistry
from storage import Store

log = logging.getLogger(__name__)


def exposure_problem(host: str, api_key: str, *, trusted_network: bool) -> str | None:
    """Why serving on `host` would be an open door, or None: an address other machines can reach, without
    COPYBOT_MODEL_API_KEY and without the operator's word that only trusted machines reach it. Whoever reaches an
    open host can run fine-tuning jobs and swap the adapter every marketer is served."""
    if api_key or trusted_network or _loopback(host):
        return None
    return (f"refusing to serve on {host} without COPYBOT_MODEL_API_KEY: anyone who can reach it could run "
            "fine-tuning jobs and swap the served adapter. Set COPYBOT_MODEL_API_KEY (the bot sends it too), or pass "
            "--trusted-network if only trusted machines can reach this address")  # fmt: skip


def _loopback(host: str) -> bool:
    if host.strip().lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False  # a host name: it may resolve to any interface


def open_routes(app: Any, api_key: str) -> list[str]:
    """The routes anyone who reaches the server can call: all of them without a key, /health alone with one."""
    paths = sorted(app.openapi().get("paths", {}))  # included routers too, which app.routes does not spell out
    return ["/health"] if api_key else paths


def build_model_server(
    settings: Settings,
    *,
    max_waiting: int = 64,
    with_jobs: bool = True,
    max_prompt_tokens: int | None = None,
    max_request_tokens: int | None = None,
) -> Any:
    """The FastAPI app: the base model (the starter by default), every registered adapter by its version name,
    and the promoted adapter already loaded so its first request needs no swap; with `with_jobs`, fine-tuning jobs
    that train in child processes and save into the same adapter registry. The limits on a prompt's tokens and a
    request's work are the server's own (model/serving/server.py) unless given."""
    from model.serving.fine_tuning import FineTuningJobs, JobHost
    from model.serving.server import ServerConfig, create_server
    from model.writing.engine import LocalEngine

    engine = LocalEngine(base_model_path(settings), version=settings.base_model)
    adapters = {a.version: a.path for a in AdapterRegistry(settings.adapters_dir).versions()}
    active = Store.open(settings.db_path).active_model_version()
    if active and active["version"] in adapters:
        engine.use_adapter(adapters[active["version"]], active["version"])
    log.info("model server: base %s, adapters %s, serving %s", settings.base_model, sorted(adapters) or "none",
             engine.version)  # fmt: skip
    jobs = None
    if with_jobs:
        jobs = FineTuningJobs(JobHost(jobs_root=settings.home / "jobs", registry_root=settings.adapters_dir,
                                      base_path=base_model_path(settings), base_model=settings.base_model))  # fmt: skip
    config = ServerConfig(base_name=settings.base_model, api_key=settings.model_api_key or "", adapters=adapters,
                          adapters_root=settings.adapters_dir, max_waiting=max_waiting,
                          batch_window_ms=settings.batch_window_ms, max_batch=settings.max_batch)  # fmt: skip
    if max_prompt_tokens is not None:
        config.max_prompt_tokens = max_prompt_tokens
    if max_request_tokens is not None:
        config.max_request_tokens = max_request_tokens
    return create_server(engine, config, jobs)


def serve(app: Any, host: str, port: int, *, grace_s: int) -> None:
    """Serve `app` with uvicorn until SIGTERM or Ctrl-C. Told to stop, uvicorn stops taking connections and waits
    for the requests in flight, while the model would go on writing them for as long as their batch runs (minutes
    for a long one); here the signal also stops the model's work (`stop_writing`), so those requests answer 503 at
    once. Whatever still runs after `grace_s` seconds is cancelled, and the process exits."""
    import uvicorn

    from model.serving.server import stop_writing

    class Server(uvicorn.Server):
        def handle_exit(self, sig: int, frame: Any) -> None:
            stop_writing(app)  # sets a flag: safe in a signal handler
            super().handle_exit(sig, frame)

    Server(uvicorn.Config(app, host=host, port=port, log_level="info", timeout_graceful_shutdown=grace_s)).run()
