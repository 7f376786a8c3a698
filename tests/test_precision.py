"""Precision on CPU (toolkit.precision): bf16 autocast only where the CPU has bf16 units and no gradients flow,
the feature cache keyed by precision, and the prediction loop (token-length batches, input order, throughput)."""

import json

import numpy as np
import pytest
import torch
from datasets import Dataset
from transformers import AutoTokenizer, DataCollatorWithPadding

from toolkit import inference, precision
from toolkit.args import ToolkitTrainingArguments
from toolkit.evaluation.predict import Throughput, predict_logits, text_batches
from toolkit.modeling import features as features_module
from toolkit.modeling.features import cached_feature_dataset, compute_features, fingerprint
from toolkit.modeling.model import TaskModel
from toolkit.precision import autocast, no_grad_precision, resolve_precision

TEXTS = ["good film", "a a a a a a a a", "zzzzzzzzzzzzzzzzzzzzzzzzzzzzzz", "the plot was really boring !", "bad",
         "i loved it , the acting was great", "awful"]


@pytest.fixture
def amx(monkeypatch):
    monkeypatch.setattr(precision, "cpu_flags", lambda: frozenset({"avx2", "amx_tile", "amx_bf16"}))


@pytest.fixture
def no_amx(monkeypatch):
    monkeypatch.setattr(precision, "cpu_flags", lambda: frozenset({"avx2", "fma"}))


@pytest.fixture(scope="module")
def model(tiny_bert):
    torch.manual_seed(0)
    return TaskModel.from_encoder(str(tiny_bert), tasks=[{"name": "label", "num_labels": 2}], mode="frozen",
                                  pooling="mean").eval()


@pytest.fixture(scope="module")
def tokenizer(tiny_bert):
    return AutoTokenizer.from_pretrained(tiny_bert)


def _linear_dtypes(model):
    """Output dtypes of every Linear in the encoder, recorded by forward hooks (and the hooks to remove)."""
    seen = []
    hooks = [m.register_forward_hook(lambda mod, args, out: seen.append(out.dtype))
             for m in model.encoder.modules() if isinstance(m, torch.nn.Linear)]
    return seen, hooks


def test_auto_is_bf16_for_encoding_on_a_cpu_with_amx_and_fp32_for_training(amx):
    assert resolve_precision("auto", "cpu") == "bf16"
    assert resolve_precision("auto", "cpu", training=True) == "fp32"
    assert resolve_precision("fp32", "cpu") == "fp32"


def test_auto_is_bf16_with_avx512_bf16_alone(monkeypatch):
    monkeypatch.setattr(precision, "cpu_flags", lambda: frozenset({"avx512f", "avx512_bf16"}))
    assert resolve_precision("auto", "cpu") == "bf16"


def test_auto_is_fp32_on_a_cpu_without_bf16_units(no_amx):
    assert resolve_precision("auto", "cpu") == "fp32"
    assert resolve_precision("auto", "cpu", training=True) == "fp32"
    assert resolve_precision("bf16", "cpu") == "bf16"  # forcing still forces


def test_unknown_precision_names_the_value():
    with pytest.raises(ValueError, match="'half'.*auto, fp32, bf16, fp16"):
        resolve_precision("half", "cpu")


@pytest.mark.parametrize("flags", ["amx", "no_amx"])
def test_training_arguments_keep_cpu_training_fp32_and_fp32_flag_forces_fp32(flags, request, tmp_path):
    request.getfixturevalue(flags)
    auto = ToolkitTrainingArguments(output_dir=str(tmp_path), report_to="none", use_cpu=True)
    assert not auto.bf16 and not auto.fp16  # training on a CPU stays fp32 under auto
    assert no_grad_precision(auto) == ("bf16" if flags == "amx" else "fp32")  # frozen encoding: no gradients
    forced = ToolkitTrainingArguments(output_dir=str(tmp_path), report_to="none", use_cpu=True, precision="fp32")
    assert not forced.bf16 and no_grad_precision(forced) == "fp32"


def test_forced_bf16_runs_the_encoder_under_autocast_and_fp32_does_not(model, tokenizer):
    tokenized = Dataset.from_dict(dict(tokenizer(TEXTS, truncation=True, max_length=32)))
    collator = DataCollatorWithPadding(tokenizer)
    for name, dtype in (("bf16", torch.bfloat16), ("fp32", torch.float32)):
        seen, hooks = _linear_dtypes(model)
        try:
            feats = compute_features(model, tokenized, collator, batch_size=4, precision=name)
        finally:
            for h in hooks:
                h.remove()
        assert seen and set(seen) == {dtype}, name
        assert feats.dtype == torch.float32 and feats.shape[0] == len(TEXTS)


@pytest.mark.parametrize("flags, expected", [("amx", torch.bfloat16), ("no_amx", torch.float32)])
def test_prediction_under_auto_follows_the_cpu(flags, expected, request, model, tokenizer):
    request.getfixturevalue(flags)
    seen, hooks = _linear_dtypes(model)
    try:
        throughput = Throughput()
        predict_logits(model, tokenizer, TEXTS, batch_size=3, max_length=32, throughput=throughput)
    finally:
        for h in hooks:
            h.remove()
    assert set(seen) == {expected}
    assert throughput.precision == ("bf16" if flags == "amx" else "fp32")


@pytest.mark.parametrize("flags, expected", [("amx", torch.bfloat16), ("no_amx", torch.float32)])
def test_trainer_evaluation_under_auto_follows_the_cpu_while_training_stays_fp32(
        flags, expected, request, model, tokenizer, tmp_path):
    from toolkit.training.trainer import ToolkitTrainer

    request.getfixturevalue(flags)
    args = ToolkitTrainingArguments(output_dir=str(tmp_path), use_cpu=True, report_to="none", precision="auto",
                                    per_device_eval_batch_size=4)
    assert not args.bf16 and not args.fp16  # CPU training under auto is fp32 either way
    rows = dict(tokenizer(TEXTS, truncation=True, max_length=32))
    rows["labels"] = [i % 2 for i in range(len(TEXTS))]
    trainer = ToolkitTrainer(model=model, args=args, eval_dataset=Dataset.from_dict(rows),
                             data_collator=DataCollatorWithPadding(tokenizer))
    seen, hooks = _linear_dtypes(model)
    try:
        metrics = trainer.evaluate()
    finally:
        for h in hooks:
            h.remove()
    assert set(seen) == {expected}
    assert np.isfinite(metrics["eval_loss"])


def test_autocast_refuses_an_unresolved_precision():
    with pytest.raises(ValueError, match="'auto' is not resolved"):
        autocast("auto", "cpu")


def test_cache_fingerprint_and_entries_differ_between_fp32_and_bf16(model, tokenizer, tmp_path, monkeypatch):
    labels = [i % 2 for i in range(len(TEXTS))]
    tokenized = Dataset.from_dict({**tokenizer(TEXTS, truncation=True, max_length=32), "labels_label": labels})
    assert fingerprint(model, tokenized, 32, precision="fp32") != fingerprint(model, tokenized, 32, precision="bf16")
    calls = []
    real = compute_features
    monkeypatch.setattr(features_module, "compute_features",
                        lambda *a, **k: calls.append(a[5] if len(a) > 5 else k.get("precision")) or real(*a, **k))
    collator = DataCollatorWithPadding(tokenizer)
    for name in ("fp32", "bf16", "fp32", "bf16"):
        cached_feature_dataset(model, tokenized, collator, tmp_path, max_length=32, precision=name)
    assert calls == ["fp32", "bf16"]  # each computed once, never served from the other's entry
    assert len(list(tmp_path.glob("*.safetensors"))) == 2


def test_batches_are_sorted_by_token_count_not_characters(tokenizer):
    counts = [len(tokenizer(t)["input_ids"]) for t in TEXTS]
    assert len(TEXTS[2]) > len(TEXTS[1]) and counts[2] < counts[1]  # the long unknown word is one token
    batches = list(text_batches(tokenizer, TEXTS, batch_size=2, max_length=32))
    order = [i for idx, _ in batches for i in idx]
    assert sorted(order) == list(range(len(TEXTS)))
    assert [counts[i] for i in order] == sorted(counts)
    for idx, batch in batches:  # each batch padded to its own longest row
        assert batch["input_ids"].shape[1] == max(counts[i] for i in idx)


def test_predictions_come_back_in_input_order(model, tokenizer):
    batched = predict_logits(model, tokenizer, TEXTS, batch_size=3, max_length=32, precision="fp32")["label"]
    one_by_one = [predict_logits(model, tokenizer, [t], batch_size=1, max_length=32, precision="fp32")["label"][0]
                  for t in TEXTS]
    assert batched.shape == (len(TEXTS), 2)
    assert np.allclose(batched, np.stack(one_by_one), atol=1e-5)


@pytest.fixture(scope="module")
def saved_model(model, tokenizer, tmp_path_factory):
    path = tmp_path_factory.mktemp("saved")
    model.config.max_length = 32
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


def test_cli_prints_json_on_stdout_and_throughput_on_stderr(saved_model, capsys):
    assert inference.main(["--model", str(saved_model), "--input", TEXTS[0], "--input", TEXTS[3],
                           "--precision", "fp32"]) == 0
    out, err = capsys.readouterr()
    rows = [json.loads(line) for line in out.splitlines()]
    assert [r["text"] for r in rows] == [TEXTS[0], TEXTS[3]]
    assert "2 texts" in err and "texts/s" in err and "tokens/s" in err and "(fp32)" in err


def test_cli_with_output_reports_throughput(saved_model, tmp_path, capsys):
    target = tmp_path / "pred.jsonl"
    source = tmp_path / "in.txt"
    source.write_text("\n".join(TEXTS) + "\n", encoding="utf-8")
    assert inference.main(["--model", str(saved_model), "--file", str(source), "--output", str(target),
                           "--batch_size", "2"]) == 0
    out = capsys.readouterr().out
    assert f"Wrote {len(TEXTS)} predictions" in out and "texts/s" in out and "tokens/s" in out
    assert [json.loads(line)["text"] for line in target.read_text(encoding="utf-8").splitlines()] == TEXTS


def test_cli_refuses_an_unknown_precision(saved_model, capsys):
    with pytest.raises(SystemExit):
        inference.main(["--model", str(saved_model), "--input", "good", "--precision", "fp16"])
    assert "--precision" in capsys.readouterr().err
