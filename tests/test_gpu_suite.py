"""The GPU suite's files and scripts, on a tiny subset: bench/prepare_gpu_suite.py writes them, and
bench/gpu_suite.sh --smoke runs every part on CPU with the datasets and evaluate packages unimportable (the GPU
machine has neither)."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from transformers import AutoTokenizer

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from bench.suite_tokens import TokenRows  # noqa: E402

BLOCK = "import sys\nsys.modules.update(datasets=None, evaluate=None, opencc=None, emoji=None)\n"


@pytest.fixture(scope="module")
def suite(tmp_path_factory, shared_data):
    from bench import prepare_gpu_suite

    out = tmp_path_factory.mktemp("suite")
    assert prepare_gpu_suite.main(["--out", str(out), "--limit", "40", "--max_length", "64",
                                   "--data_dir", str(shared_data / "imdb")]) == 0
    return out


def test_prepare_writes_fp16_model_and_token_ids_that_match_the_tokenizer(suite, shared_data):
    from safetensors import safe_open

    import pyarrow.parquet as pq

    manifest = json.loads((suite / "manifest.json").read_text())
    assert manifest["max_length"] == 64 and manifest["train"]["rows"] == 40 and manifest["test"]["rows"] == 40
    with safe_open(str(suite / "minilm" / "model.safetensors"), "pt") as f:
        dtypes = {f.get_tensor(k).dtype for k in f.keys() if f.get_tensor(k).is_floating_point()}
        assert not any(k.startswith("pooler.") for k in f.keys())
    assert {str(d) for d in dtypes} == {"torch.float16"}
    rows = TokenRows(suite / "imdb_train.npz")
    tokenizer = AutoTokenizer.from_pretrained(suite / "minilm")
    table = pq.read_table(shared_data / "imdb" / "train.parquet", columns=["text", "label"])
    keep = np.sort(np.random.default_rng(0).permutation(table.num_rows)[:40])
    first = int(keep[0])
    expected = tokenizer(table.column("text")[first].as_py(), truncation=True, max_length=64)["input_ids"]
    assert rows[0]["input_ids"] == expected and rows[0]["labels"] == table.column("label")[first].as_py()
    short = TokenRows(suite / "imdb_train.npz", max_length=16)
    assert all(len(short[i]["input_ids"]) <= 16 for i in range(len(short)))
    assert short[0]["input_ids"][-1] == tokenizer.sep_token_id  # shortened rows keep their closing [SEP]
    size = sum(f.stat().st_size for f in suite.rglob("*") if f.is_file())
    assert size < 64 * 2**20


def test_suite_smoke_runs_every_part_without_datasets(suite, tmp_path):
    (tmp_path / "sitecustomize.py").write_text(BLOCK, encoding="utf-8")
    env = {**os.environ, "PYTHONPATH": str(tmp_path), "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}
    proc = subprocess.run(["bash", str(ROOT / "bench" / "gpu_suite.sh"), "--smoke", "--suite", str(suite)],
                          capture_output=True, text=True, env=env, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    for check in ("speed samples/s", "speed vs plain", "speed MFU", "finetune accuracy", "frozen accuracy"):
        assert f"| {check} |" in proc.stdout, proc.stdout[-2000:]


def test_suite_refuses_a_missing_folder(tmp_path):
    proc = subprocess.run([sys.executable, str(ROOT / "bench" / "gpu_suite.py"), "--suite", str(tmp_path / "none")],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode != 0
    assert "run python bench/prepare_gpu_suite.py first" in proc.stderr
