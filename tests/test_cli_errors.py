"""The command lines' error contract: a wrong flag or file ends in one clear line and exit status 2, never a
traceback (unless asked for with TOOLKIT_DEBUG=1 or --debug) or a plausible wrong result."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from toolkit import inference
from toolkit.studies import weibo

ROOT = Path(__file__).resolve().parents[1]


def run(*argv: str, debug: bool = False, cwd: Path | None = None) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("TOOLKIT_DEBUG", "TOOLKIT_ERROR_FILE")}
    env.update(HF_HUB_OFFLINE="1", HF_DATASETS_OFFLINE="1", **({"TOOLKIT_DEBUG": "1"} if debug else {}))
    return subprocess.run([sys.executable, *argv], cwd=cwd or ROOT, env=env, capture_output=True, text=True,
                          timeout=120)


def assert_one_error_line(proc: subprocess.CompletedProcess, prog: str, *fragments: str) -> str:
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert "Traceback" not in proc.stderr and len(lines) == 1, proc.stderr
    assert lines[0].startswith(f"{prog}: error: "), lines[0]
    for fragment in fragments:
        assert fragment in lines[0]
    return lines[0]


# -- python -m toolkit.inference -------------------------------------------------------------------------------------
def test_inference_missing_model_is_one_line(tmp_path):
    proc = run("-m", "toolkit.inference", "--model", str(tmp_path / "missing"), "--input", "x")
    assert_one_error_line(proc, "toolkit-predict", str(tmp_path / "missing"), "no config.json")
    debug = run("-m", "toolkit.inference", "--model", str(tmp_path / "missing"), "--input", "x", debug=True)
    assert debug.returncode == 1 and "Traceback" in debug.stderr and "FileNotFoundError" in debug.stderr


def test_inference_bad_input_file_is_one_line(tmp_path):
    source = tmp_path / "posts.jsonl"
    source.write_text('{"text": "a"}\n{"text": "b"\n', encoding="utf-8")
    proc = run("-m", "toolkit.inference", "--model", str(tmp_path), "--file", str(source))
    assert_one_error_line(proc, "toolkit-predict", "line 2: not valid JSON")


@pytest.mark.parametrize("device", ["gpu", "cuda:x", "cuda:-1", "tpu", ""])
def test_bad_device_is_a_usage_error_listing_the_accepted_values(device, capsys):
    with pytest.raises(SystemExit) as exit_info:
        inference.main(["--model", "m", "--input", "x", "--device", device])
    err = capsys.readouterr().err
    assert exit_info.value.code == 2 and f"argument --device: {device!r} is not a device; use cpu, cuda, cuda:N" in err
    with pytest.raises(SystemExit) as exit_info:
        weibo.main(["--model", "m", "--test_file", "virus_eval", "--device", device])
    err = capsys.readouterr().err
    assert exit_info.value.code == 2 and f"{device!r} is not a device; use auto, cpu, cuda, cuda:N" in err


def test_bad_device_from_the_shell_has_no_traceback(tmp_path):
    proc = run("-m", "toolkit.inference", "--model", str(tmp_path), "--input", "x", "--device", "gpu")
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert "toolkit-predict: error: argument --device: 'gpu' is not a device" in proc.stderr.splitlines()[-1]


@pytest.mark.parametrize("flag,value", [("--batch_size", "0"), ("--batch_size", "-4"), ("--max_length", "0"),
                                        ("--max_length", "-1"), ("--batch_size", "many"), ("--max_samples", "0")])
def test_sizes_below_one_are_usage_errors(flag, value, capsys):
    if flag != "--max_samples":  # weibo's only
        with pytest.raises(SystemExit) as exit_info:
            inference.main(["--model", "m", "--input", "x", flag, value])
        assert exit_info.value.code == 2 and f"argument {flag}: expected an integer >= " in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_info:
        weibo.main(["--model", "m", "--test_file", "virus_eval", flag, value])
    assert exit_info.value.code == 2 and f"argument {flag}: expected an integer >= " in capsys.readouterr().err


def test_valid_devices_parse(monkeypatch):
    assert [inference.device_arg(d) for d in ("cpu", "CUDA", "cuda:1", "mps")] == ["cpu", "cuda", "cuda:1", "mps"]
    assert inference.device_or_auto_arg("auto") == "auto"
    if not __import__("torch").cuda.is_available():
        with pytest.raises(ValueError, match="no CUDA device is available here; use --device cpu"):
            inference.check_device("cuda:0")


# -- python -m toolkit.studies.weibo (test.sh) ----------------------------------------------------------------------
def test_weibo_missing_model_and_bad_device_from_the_shell(tmp_path):
    proc = run("-m", "toolkit.studies.weibo", "--model", str(tmp_path / "none"), "--test_file", "virus_eval")
    assert_one_error_line(proc, "toolkit.studies.weibo", "no saved model there", "sh train.sh")
    bad = run("-m", "toolkit.studies.weibo", "--model", str(tmp_path), "--test_file", "x", "--device", "gpu")
    assert bad.returncode == 2 and "Traceback" not in bad.stderr and "'gpu' is not a device" in bad.stderr


# -- clean-weibo: python -m toolkit.cleaning_cli and data_cleaning/clean_weibo.py ------------------------------------
@pytest.mark.parametrize("script", [("-m", "toolkit.cleaning_cli"), (str(ROOT / "data_cleaning" / "clean_weibo.py"),)],
                         ids=["module", "script"])
def test_cleaning_cli_runs_through_run_cli(script, tmp_path):
    """``--debug`` is run_cli's flag (argparse alone would reject it); errors stay one line, with status 1."""
    src, dst = tmp_path / "in.json", tmp_path / "out.json"
    src.write_text(json.dumps([{"id": 1, "content": "ＨＥＬＬＯ"}]), encoding="utf-8")
    ok = run(*script, str(src), str(dst), "--debug", cwd=tmp_path)
    assert ok.returncode == 0, ok.stderr
    assert json.loads(dst.read_text(encoding="utf-8")) == [{"id": 1, "content": "hello"}]
    missing = run(*script, str(tmp_path / "nothing.json"), str(dst), cwd=tmp_path)
    assert missing.returncode == 1 and "Traceback" not in missing.stderr
    assert missing.stderr.strip().splitlines() == [f"clean-weibo: error: input file {tmp_path / 'nothing.json'} "
                                                   "does not exist (or is not a file)."]


def test_cleaning_cli_main_stays_torch_free(tmp_path):
    src = tmp_path / "in.jsonl"
    src.write_text('{"content": "x"}\n', encoding="utf-8")
    code = ("import runpy, sys\n"
            f"sys.argv = ['clean-weibo', {str(src)!r}, {str(tmp_path / 'out.jsonl')!r}]\n"
            "try:\n    runpy.run_module('toolkit.cleaning_cli', run_name='__main__')\n"
            "except SystemExit as exit:\n    assert exit.code == 0, exit.code\n"
            "print('torch' in sys.modules, 'transformers' in sys.modules)\n")
    proc = run("-c", code)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip().splitlines()[-1] == "False False"


# -- recipes/pretrain_mlm.py's documented CPU try ------------------------------------------------------------------
@pytest.mark.parametrize("config", sorted((ROOT / "recipes" / "pretrain_mlm").glob("*.yaml")), ids=lambda p: p.name)
def test_pretrain_mlm_configs_parse_without_a_gpu(config):
    """No ``bf16: true`` that stops a CPU run at argument parsing: ``precision: auto`` is bf16 only where supported."""
    import torch

    from toolkit.args import parse_args
    from toolkit.studies import mlm

    _, training_args = parse_args((mlm.MLMArguments, mlm.MLMTrainingArguments), [str(config), "--report_to", "none"])
    assert training_args.precision == "auto"
    assert training_args.bf16 == bool(torch.cuda.is_available() and torch.cuda.is_bf16_supported())
