"""MLM pretraining: corpus, character vocabulary (tokenizers), packing, 15% 80/10/10 masking, the recipe."""

from __future__ import annotations

import importlib.util
import json
import math
from pathlib import Path

import pytest
import torch
from transformers import AutoModelForMaskedLM, AutoTokenizer, TrainerControl, TrainerState, TrainingArguments

from toolkit.studies import mlm

ROOT = Path(__file__).resolve().parents[1]
CORPUS = [
    "今天天气很好，我很开心。", "这部电影太棒了！", "快递太慢了，生气。", "疫情快点过去吧，加油武汉",
    "房间干净，服务很好", "外卖送得很快，味道不错", "我好害怕，怎么办", "没想到竟然是这样，惊讶",
    "hello world 2020 abc", "口罩买不到，难过",
] * 20


def load_recipe(name: str):
    spec = importlib.util.spec_from_file_location(name, ROOT / "recipes" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def char_tokenizer(tmp_path_factory):
    vocab = mlm.train_char_vocab(CORPUS, vocab_size=300, min_frequency=2)
    return mlm.save_tokenizer(vocab, tmp_path_factory.mktemp("vocab"), model_max_length=64), vocab


def test_char_vocab_loads_back_with_autotokenizer(char_tokenizer, tmp_path):
    tokenizer, vocab = char_tokenizer
    assert vocab[:5] == mlm.SPECIAL_TOKENS
    assert {"开", "心", "疫", "情", "罩"} <= set(vocab)
    loaded = AutoTokenizer.from_pretrained(tokenizer.name_or_path)
    assert len(loaded) == len(vocab) and loaded.get_vocab() == tokenizer.get_vocab()
    assert loaded.tokenize("我很开心") == ["我", "很", "开", "心"]  # one token per Chinese character
    assert "[UNK]" not in loaded.tokenize("Hello 武汉")  # lower-cased, Latin words in WordPiece pieces
    ids = loaded("开心")["input_ids"]
    assert ids[0] == loaded.cls_token_id and ids[-1] == loaded.sep_token_id and len(ids) == 4


def test_packing_makes_full_blocks(char_tokenizer):
    tokenizer, _ = char_tokenizer
    ds = mlm.pack_texts(CORPUS, tokenizer, block_size=32)
    assert len(ds) > 10 and all(len(ids) == 32 for ids in ds["input_ids"])
    total = sum(len(ids) for ids in tokenizer(CORPUS)["input_ids"])
    assert len(ds) == total // 32  # nothing padded, only the last partial block dropped


def test_collator_masks_fifteen_percent_with_80_10_10(char_tokenizer):
    tokenizer, _ = char_tokenizer
    ds = mlm.pack_texts(CORPUS * 5, tokenizer, block_size=64)
    batch = mlm.mlm_collator(tokenizer, 0.15, seed=0)([{"input_ids": ids} for ids in ds["input_ids"]])
    selected = batch["labels"] != -100
    share = mlm.masked_share(batch, tokenizer)
    assert 0.13 < share < 0.17, share
    as_mask = (batch["input_ids"][selected] == tokenizer.mask_token_id).float().mean()
    assert 0.75 < float(as_mask) < 0.85, as_mask
    kept = (batch["input_ids"][selected] == batch["labels"][selected]).float().mean()
    assert 0.05 < float(kept) < 0.17, kept  # ~10% unchanged (plus random draws that hit the same id)
    specials = torch.isin(batch["labels"], torch.tensor([tokenizer.cls_token_id, tokenizer.sep_token_id]))
    assert not specials.any()  # [CLS]/[SEP] are never selected


def test_corpus_default_leaves_test_splits_out_and_strips_bom(shared_data):
    assert "virus_test" not in mlm.DEFAULT_CORPUS and "usual_test" not in mlm.DEFAULT_CORPUS
    texts = mlm.corpus_texts(["chnsenticorp", "virus_eval"])
    assert 8000 < len(texts) <= 7766 + 2000 and len(set(texts)) == len(texts)
    assert not any(t.startswith("\ufeff") for t in texts)
    with pytest.raises(ValueError, match="neither one of"):
        mlm.corpus_texts(["no_such_source"])


def test_time_limit_callback_stops_training():
    callback = mlm.TimeLimitCallback(minutes=0.0)
    args, state, control = TrainingArguments(output_dir="unused", report_to="none"), TrainerState(), TrainerControl()
    callback.on_train_begin(args, state, control)
    state.global_step = 3
    assert callback.on_step_end(args, state, control).should_training_stop and callback.stopped_at_step == 3
    assert not mlm.TimeLimitCallback(None).on_step_end(args, state, TrainerControl()).should_training_stop


@pytest.mark.slow
def test_pretrain_recipe_from_scratch_then_continue(tmp_path):
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("\n".join(CORPUS), encoding="utf-8")
    recipe = load_recipe("pretrain_mlm")
    common = ["--corpus", str(corpus), "--report_to", "none", "--block_size", "32", "--per_device_train_batch_size",
              "8", "--bf16", "false", "--dataloader_num_workers", "0", "--eval_fraction", "0.3", "--max_steps", "4"]
    scratch = recipe.main(common + ["--output_dir", str(tmp_path / "scratch"), "--vocab_size", "200",
                                    "--hidden_size", "32", "--num_hidden_layers", "2", "--num_attention_heads", "4",
                                    "--intermediate_size", "64", "--learning_rate", "1e-3"])
    assert scratch["steps"] == 4 and scratch["init_from"] == "scratch"
    assert math.isfinite(scratch["eval_mlm_loss"]) and scratch["eval_mlm_loss"] < math.log(scratch["vocab_size"]) + 1
    saved = json.loads((tmp_path / "scratch" / "results.json").read_text(encoding="utf-8"))
    assert saved["texts"]["eval"] == 3 and saved["cleaning"] is not None  # dedup: 10 distinct texts, 30% held out
    tokenizer = AutoTokenizer.from_pretrained(tmp_path / "scratch")
    model = AutoModelForMaskedLM.from_pretrained(tmp_path / "scratch")
    assert model.config.vocab_size == len(tokenizer) == scratch["vocab_size"]

    before = {k: v.clone() for k, v in model.state_dict().items()}
    continued = recipe.main(common + ["--output_dir", str(tmp_path / "continued"), "--init_from",
                                      str(tmp_path / "scratch"), "--learning_rate", "1e-3"])
    assert continued["init_from"] == str(tmp_path / "scratch") and continued["vocab_size"] == scratch["vocab_size"]
    after = AutoModelForMaskedLM.from_pretrained(tmp_path / "continued").state_dict()
    changed = [k for k in before if not torch.equal(before[k], after[k])]
    assert any("encoder.layer.0" in k for k in changed)  # continued from the weights, and they moved


def test_mlm_yaml_configs_parse():
    from toolkit.args import parse_args

    for config in sorted((ROOT / "recipes" / "pretrain_mlm").glob("*.yaml")):
        args, training_args = parse_args((mlm.MLMArguments, mlm.MLMTrainingArguments),
                                         [str(config), "--report_to", "none", "--bf16", "false"])
        assert args.mlm_probability == 0.15 and args.max_minutes == 9 and training_args.per_device_train_batch_size
