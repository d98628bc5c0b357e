"""Model versions (which adapter is active), training runs, and hyperparameter-search trials."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from storage.base import Row, StoreBase, insert_row
from storage.errors import StoreError
from storage.trials import end_running_trial


class TrainingRecords(StoreBase):
    """The store's records of training: part of `Store`."""

    def add_model_version(
        self,
        *,
        version: str,
        base_model: str,
        adapter_path: str = "",
        parent_version: str = "",
        status: str = "candidate",
        metrics: Mapping[str, Any] | None = None,
    ) -> int:
        """Register an adapter version (or the base model itself) and return its id."""
        row = {
            "version": version,
            "base_model": base_model,
            "adapter_path": adapter_path,
            "parent_version": parent_version,
            "status": status,
            "metrics": json.dumps(dict(metrics or {}), ensure_ascii=False),
            "created_at": self.now(),
        }
        with self._atomic() as db:
            return insert_row(db, "model_versions", row)

    def promote_model_version(self, version: str) -> None:
        """Make `version` the only active version; the previously active one becomes retired. A person choosing the
        version ends any running trial (its challenger is 'stopped', unless it is the version promoted)."""
        with self._atomic() as db:
            if db.execute("select 1 from model_versions where version = ?", [version]).fetchone() is None:
                raise StoreError(f"model version {version!r} is not registered")
            end_running_trial(db, now=self.now(), reason=f"{version} was promoted by hand")
            db.execute("update model_versions set status = 'retired' where status = 'active'")
            db.execute(
                "update model_versions set status = 'active', promoted_at = ? where version = ?", [self.now(), version]
            )

    def model_versions(self) -> list[Row]:
        """Every registered version, oldest first."""
        with self._lock:
            return list(self.db.table("model_versions").rows_where(order_by="id"))

    def rollback_model_version(self) -> Row | None:
        """Re-activate the version that was active before the current one; None means back to the base model.
        A rollback ends any running trial."""
        with self._atomic() as db:
            rows = [dict(zip(("version", "status"), r, strict=True)) for r in db.execute(
                "select version, status from model_versions where promoted_at is not null order by promoted_at desc, id desc"
            ).fetchall()]  # fmt: skip
            if not rows or rows[0]["status"] != "active":
                if end_running_trial(db, now=self.now(), reason="rolled back while the base model served") is not None:
                    return None  # the base model serves on; the trial of a new version is over
                raise StoreError("no active model version to roll back from")
            end_running_trial(db, now=self.now(), reason=f"rolled back from {rows[0]['version']}")
            db.execute("update model_versions set status = 'rolled_back' where version = ?", [rows[0]["version"]])
            previous = next((r for r in rows[1:] if r["status"] == "retired"), None)
            if previous is not None:
                db.execute("update model_versions set status = 'active', promoted_at = ? where version = ?",
                           [self.now(), previous["version"]])  # fmt: skip
        return self.active_model_version()

    def active_model_version(self) -> Row | None:
        """The active model version row, or None when only the base model is in use."""
        with self._lock:
            rows = list(self.db.table("model_versions").rows_where("status = 'active'", order_by="id desc", limit=1))
        return rows[0] if rows else None

    def start_training_run(
        self,
        *,
        trigger: str,
        base_model: str,
        parent_version: str = "",
        hyperparameters: Mapping[str, Any] | None = None,
    ) -> int:
        """Record that a training run started; return its id."""
        row = {
            "started_at": self.now(),
            "status": "running",
            "trigger": trigger,
            "base_model": base_model,
            "parent_version": parent_version,
            "hyperparameters": json.dumps(dict(hyperparameters or {}), ensure_ascii=False),
        }
        with self._atomic() as db:
            return insert_row(db, "training_runs", row)

    def finish_training_run(self, run_id: int, *, status: str, **fields: Any) -> None:
        """Close a training run with its status and any of: result_version, dataset_summary, metrics,
        gate_decision, gate_reasons, error (dicts and lists are stored as JSON)."""
        allowed = {"result_version", "dataset_summary", "metrics", "gate_decision", "gate_reasons", "error"}
        unknown = set(fields) - allowed
        if unknown:
            raise StoreError(f"unknown training run fields: {sorted(unknown)}")
        update = {k: json.dumps(v, ensure_ascii=False) if isinstance(v, dict | list) else v for k, v in fields.items()}
        update.update({"status": status, "finished_at": self.now()})
        with self._atomic() as db:
            db.table("training_runs").update(run_id, update)

    def fail_unfinished_training_runs(self, *, error: str) -> int:
        """Mark runs (and tuning trials) still 'running' as failed; call only while holding the retrain lock, when
        none can really be running. Returns how many training runs were closed."""
        with self._atomic() as db:
            now = self.now()
            closed = db.execute("update training_runs set status = 'failed', error = ?, finished_at = ? "
                                "where status = 'running'", [error, now]).rowcount  # fmt: skip
            db.execute("update tuning_trials set status = 'failed', error = ?, finished_at = ? where status = 'running'",
                       [error, now])  # fmt: skip
        return int(closed)

    def start_tuning_trial(self, *, study: str, trial: int, params: Mapping[str, Any]) -> int:
        """Record that a tuning trial started; return its id."""
        row = {"study": study, "trial": trial, "started_at": self.now(), "status": "running",
               "params": json.dumps(dict(params), ensure_ascii=False, sort_keys=True)}  # fmt: skip
        with self._atomic() as db:
            return insert_row(db, "tuning_trials", row)

    def finish_tuning_trial(
        self, trial_id: int, *, status: str, val_loss: float | None = None, seconds: float = 0.0, error: str = ""
    ) -> None:
        """Close a tuning trial with its validation loss (or its error)."""
        update = {"status": status, "val_loss": val_loss, "seconds": seconds, "error": error,
                  "finished_at": self.now()}  # fmt: skip
        with self._atomic() as db:
            db.table("tuning_trials").update(trial_id, update)

    def tuning_trials(self, study: str | None = None) -> list[Row]:
        """Trials of one study (or all), in order, with `params` decoded."""
        where, args = ("study = ?", [study]) if study else (None, [])
        with self._lock:
            rows = list(self.db.table("tuning_trials").rows_where(where, args, order_by="id"))
        return [{**row, "params": json.loads(row["params"])} for row in rows]
