import datasets
import torch
from transformers import BertConfig, DataCollatorWithPadding, TrainingArguments

from toolkit.modeling.model import TaskModel, TaskModelConfig
from toolkit.training.trainer import ToolkitTrainer

TASKS = [{"name": "label", "num_labels": 2}]  # one classification head; its labels travel as labels_label


def one_update(tmp_path, batch_size: int, accumulation: int, tokenizer_dir) -> torch.Tensor:
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tokenizer_dir)
    enc = BertConfig(vocab_size=len(tokenizer), hidden_size=16, num_hidden_layers=2, num_attention_heads=2,
                     intermediate_size=32, hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
    torch.manual_seed(0)
    model = TaskModel(TaskModelConfig(encoder=enc, tasks=TASKS, head_dropout=0.0))
    texts = ["great film", "awful plot", "good story", "bad acting", "loved it", "boring and dull", "best", "worst"]
    texts = texts * 2
    ds = datasets.Dataset.from_dict({"text": texts, "labels_label": [1, 0, 1, 0, 1, 0, 1, 0] * 2})
    ds = ds.map(lambda b: tokenizer(b["text"]), batched=True, remove_columns=["text"])
    args = TrainingArguments(output_dir=str(tmp_path / f"b{batch_size}"), per_device_train_batch_size=batch_size,
                             gradient_accumulation_steps=accumulation, max_steps=1, learning_rate=0.5, optim="sgd",
                             lr_scheduler_type="constant", report_to="none", save_strategy="no", use_cpu=True,
                             train_sampling_strategy="sequential", dataloader_pin_memory=False)
    collator = DataCollatorWithPadding(tokenizer)
    trainer = ToolkitTrainer(model=model, args=args, train_dataset=ds, data_collator=collator)
    trainer.train()
    counts = trainer.token_counts()
    assert counts["padded_tokens"] >= counts["real_tokens"] > 0
    return torch.nn.utils.parameters_to_vector(model.parameters()).detach()


def test_gradient_accumulation_matches_one_big_batch(tmp_path, tiny_bert):
    """The model returns a per-batch mean loss, so Trainer must scale it; 2 x 8 must equal 1 x 16."""
    big = one_update(tmp_path, 16, 1, tiny_bert)
    accumulated = one_update(tmp_path, 8, 2, tiny_bert)
    torch.testing.assert_close(accumulated, big, rtol=1e-4, atol=1e-6)


def test_predictions_keep_row_order_with_length_grouping(tmp_path, tiny_bert):
    """Reports pair predictions with rows: with grouped training, evaluation runs longest rows first and predict()
    still returns them in row order."""
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_bert)
    model = TaskModel.from_encoder(str(tiny_bert), tasks=TASKS).eval()
    texts = [" ".join(["film"] * n) for n in (1, 9, 3, 12, 2, 7, 5, 11, 4, 8, 6, 10)]
    ds = datasets.Dataset.from_dict({"text": texts, "labels_label": [0, 1] * 6})
    ds = ds.map(lambda b: tokenizer(b["text"]), batched=True, remove_columns=["text"])
    args = TrainingArguments(output_dir=str(tmp_path), per_device_eval_batch_size=4, report_to="none",
                             use_cpu=True, train_sampling_strategy="group_by_length", dataloader_pin_memory=False)
    trainer = ToolkitTrainer(model=model, args=args, eval_dataset=ds, data_collator=DataCollatorWithPadding(tokenizer))
    widths = [batch["input_ids"].shape[1] for batch in trainer.get_test_dataloader(ds)]
    assert widths == sorted(widths, reverse=True) and widths[0] > widths[-1]  # longest first, each batch its own pad
    prediction = trainer.predict(ds)
    (predicted,), (labels,) = prediction.predictions, prediction.label_ids  # one entry per task
    assert labels.tolist() == ds["labels_label"]
    with torch.no_grad():
        expected = torch.cat([model(**tokenizer([t], return_tensors="pt")).logits for t in texts])
    torch.testing.assert_close(torch.as_tensor(predicted), expected, rtol=1e-4, atol=1e-5)


def test_cpu_training_flushes_denormals(tmp_path, tiny_bert):
    """Denormal floats make x86 matmuls several times slower; a CPU trainer flushes them to zero."""
    torch.set_flush_denormal(False)
    try:
        denormal = torch.tensor([1e-39], dtype=torch.float32)
        assert (denormal * 1.0).item() != 0.0
        model = TaskModel.from_encoder(str(tiny_bert), tasks=TASKS)
        args = TrainingArguments(output_dir=str(tmp_path), report_to="none", use_cpu=True)
        ToolkitTrainer(model=model, args=args)
        assert (denormal * 1.0).item() == 0.0
    finally:
        torch.set_flush_denormal(True)


def test_single_task_labels_shorthand_is_scored_too(tmp_path, tiny_bert):
    """The model takes ``labels`` as the single-task shorthand for labels_<task>; evaluating rows that carry it
    must report the task's metrics, not only eval_loss (silently dropping accuracy)."""
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_bert)
    model = TaskModel.from_encoder(str(tiny_bert), tasks=TASKS).eval()
    ds = datasets.Dataset.from_dict({"text": ["great film", "awful plot"] * 4, "labels": [1, 0] * 4})
    ds = ds.map(lambda b: tokenizer(b["text"]), batched=True, remove_columns=["text"])
    args = TrainingArguments(output_dir=str(tmp_path), per_device_eval_batch_size=4, report_to="none", use_cpu=True,
                             dataloader_pin_memory=False)
    trainer = ToolkitTrainer(model=model, args=args, data_collator=DataCollatorWithPadding(tokenizer))
    metrics = trainer.evaluate(ds)
    assert "eval_loss" in metrics
    assert {"eval_accuracy", "eval_macro_f1"} <= set(metrics), f"labels were not scored: {sorted(metrics)}"
