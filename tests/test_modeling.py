import pytest
import torch
from transformers import BertConfig

from toolkit.modeling.model import TaskModel, TaskModelConfig
from toolkit.modeling.pooling import (
    LAYER_CHOICES,
    POOLING_CHOICES,
    Pooler,
    SelfAttentivePooling,
    masked_max,
    masked_mean,
)


def one_task(num_labels: int = 3) -> list[dict]:
    """A single-task model's one label space (regression for one output, as the old num_labels=1 meant)."""
    kind = "regression" if num_labels == 1 else "classification"
    return [{"name": "label", "num_labels": num_labels, "problem_type": kind}]


def tiny_config(**kwargs) -> TaskModelConfig:
    enc = BertConfig(vocab_size=50, hidden_size=16, num_hidden_layers=4, num_attention_heads=2, intermediate_size=32)
    return TaskModelConfig(encoder=enc, tasks=one_task(kwargs.pop("num_labels", 3)), **kwargs)


def batch():
    ids = torch.randint(5, 50, (3, 9))
    mask = torch.ones_like(ids)
    mask[1, 5:] = 0
    mask[2, 2:] = 0
    return ids, mask


def test_head_is_the_studys_mlp():
    model = TaskModel(tiny_config())
    layers = list(model.head)
    assert [type(m).__name__ for m in layers] == ["Linear", "ReLU", "Dropout", "Linear"]
    assert (layers[0].in_features, layers[0].out_features, layers[3].out_features) == (16, 256, 3)
    assert layers[2].p == pytest.approx(0.1)
    assert list(model.heads) == ["label"] and model.head is model.heads["label"]
    # a single-task config mirrors its task for transformers' own code
    assert model.config.num_labels == 3 and model.config.problem_type == "single_label_classification"


@pytest.mark.parametrize("pooling", POOLING_CHOICES)
@pytest.mark.parametrize("layers", LAYER_CHOICES)
def test_every_pooling_and_layer_choice_round_trips(tmp_path, pooling, layers):
    model = TaskModel(tiny_config(pooling=pooling, layers=layers)).eval()
    ids, mask = batch()
    logits = model(input_ids=ids, attention_mask=mask).logits
    assert logits.shape == (3, 3)
    model.save_pretrained(tmp_path)
    assert (tmp_path / "model.safetensors").is_file()
    assert not list(tmp_path.glob("*.bin")) and not list(tmp_path.glob("*.pt"))
    loaded = TaskModel.from_pretrained(tmp_path).eval()
    assert (loaded.config.pooling, loaded.config.layers) == (pooling, layers)
    torch.testing.assert_close(loaded(input_ids=ids, attention_mask=mask).logits, logits)


def test_frozen_mode_trains_head_only_and_finetune_trains_all():
    ids, mask = batch()
    labels = torch.tensor([0, 1, 2])
    frozen = TaskModel(tiny_config(mode="frozen"))
    frozen.train()
    assert not frozen.encoder.training, "a frozen encoder must stay in eval mode (no dropout)"
    frozen(input_ids=ids, attention_mask=mask, labels=labels).loss.backward()
    assert all(p.grad is None and not p.requires_grad for p in frozen.encoder.parameters())
    assert all(p.grad is not None for p in frozen.head.parameters())

    tuned = TaskModel(tiny_config(mode="finetune"))
    tuned(input_ids=ids, attention_mask=mask, labels=labels).loss.backward()
    assert all(p.grad is not None for p in tuned.encoder.embeddings.parameters())
    tuned.freeze_encoder()
    assert tuned.config.mode == "frozen" and not any(p.requires_grad for p in tuned.encoder.parameters())
    tuned.unfreeze_encoder()
    assert all(p.requires_grad for p in tuned.encoder.parameters())


def test_regression_head_uses_mse():
    model = TaskModel(tiny_config(num_labels=1)).eval()
    assert model.config.problem_type == "regression"
    ids, mask = batch()
    target = torch.tensor([1.0, 5.0, 3.0])
    out = model(input_ids=ids, attention_mask=mask, labels=target)
    torch.testing.assert_close(out.loss, torch.nn.functional.mse_loss(out.logits.squeeze(-1), target))
    # labels travel as labels_<task>; `labels` is the single-task shorthand for the same column
    torch.testing.assert_close(model(input_ids=ids, attention_mask=mask, labels_label=target).loss, out.loss)


def test_bad_config_values_are_refused():
    with pytest.raises(ValueError, match="mode"):
        tiny_config(mode="half")
    with pytest.raises(ValueError, match="pooling"):
        TaskModel(tiny_config(pooling="median"))


def test_from_encoder_loads_pretrained_weights(tiny_bert):
    from transformers import AutoModel

    reference = AutoModel.from_pretrained(tiny_bert, add_pooling_layer=False)
    model = TaskModel.from_encoder(str(tiny_bert), tasks=one_task(2), mode="frozen")
    for name, tensor in reference.state_dict().items():
        torch.testing.assert_close(model.encoder.state_dict()[name], tensor)
    assert model.config.encoder["hidden_size"] == 32 and model.is_frozen


def test_masked_poolings_ignore_padding():
    states = torch.arange(2 * 4 * 3, dtype=torch.float).view(2, 4, 3)
    mask = torch.tensor([[1, 1, 0, 0], [1, 1, 1, 1]])
    torch.testing.assert_close(masked_mean(states, mask)[0], states[0, :2].mean(0))
    torch.testing.assert_close(masked_max(states, mask)[0], states[0, 1])
    torch.testing.assert_close(masked_mean(states, mask)[1], states[1].mean(0))


def test_self_attentive_weights_sum_to_one_and_skip_padding():
    pool = SelfAttentivePooling(hidden_size=8, attention_dim=5, hops=3)
    states = torch.randn(2, 6, 8)
    mask = torch.tensor([[1, 1, 1, 0, 0, 0], [1, 1, 1, 1, 1, 1]])
    pooled, attention = pool(states, mask)
    assert pooled.shape == (2, 24) and attention.shape == (2, 3, 6)
    torch.testing.assert_close(attention.sum(-1), torch.ones(2, 3))
    assert torch.all(attention[0, :, 3:] == 0)
    a = attention.float()
    expected = ((a @ a.transpose(1, 2) - torch.eye(3)) ** 2).sum((1, 2)).mean()
    torch.testing.assert_close(SelfAttentivePooling.penalty(attention), expected)


def test_scalar_mix_features_commute_with_linear_pooling():
    """Caching per-layer pooled vectors then mixing equals pooling the mixed token states."""
    pooler = Pooler(8, 3, pooling="mean", layers="scalar_mix")
    with torch.no_grad():
        pooler.scalar_mix.weights.copy_(torch.tensor([0.3, -1.0, 2.0, 0.5]))
        pooler.scalar_mix.gamma.fill_(1.7)
    hidden = tuple(torch.randn(2, 5, 8) for _ in range(4))
    mask = torch.tensor([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1]])
    mixed_states = pooler.scalar_mix(torch.stack(hidden, dim=1), dim=1)
    torch.testing.assert_close(pooler(hidden, mask).pooled, masked_mean(mixed_states, mask))
    assert Pooler(8, 3, pooling="max", layers="scalar_mix").cacheable is False


CACHEABLE = [(p, layers) for p in ("cls", "mean", "max") for layers in LAYER_CHOICES
             if (p, layers) != ("max", "scalar_mix")]  # max over a learned mix is refused (tested above)


@pytest.mark.parametrize("pooling, layers", CACHEABLE)
def test_cached_features_give_the_direct_pooling(pooling, layers):
    """from_features(features(h)) equals pooling the chosen layers' token states directly."""
    pooler = Pooler(8, 4, pooling=pooling, layers=layers)
    assert pooler.cacheable
    hidden = tuple(torch.randn(2, 5, 8) for _ in range(5))
    mask = torch.tensor([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1]])
    features = pooler.features(hidden, mask)
    assert features.shape[1:] == ((5, 8) if pooler.per_layer_features else (pooler.output_size,))
    states = pooler._token_states(hidden)
    direct = {"cls": states[:, 0], "mean": masked_mean(states, mask), "max": masked_max(states, mask)}[pooling]
    torch.testing.assert_close(pooler.from_features(features), direct)
    torch.testing.assert_close(pooler(hidden, mask).pooled, direct)


def test_encoder_config_from_a_half_precision_checkpoint_builds_a_float32_model():
    enc = BertConfig(vocab_size=40, hidden_size=16, num_hidden_layers=2, num_attention_heads=2, intermediate_size=32,
                     dtype="float16").to_dict()
    assert enc["dtype"] == "float16"
    model = TaskModel(TaskModelConfig(encoder=enc, tasks=one_task(3)))
    assert {p.dtype for p in model.parameters()} == {torch.float32}
    out = model(input_ids=torch.randint(5, 40, (2, 7)), labels=torch.tensor([0, 2]))
    assert out.logits.shape == (2, 3) and torch.isfinite(out.loss)
