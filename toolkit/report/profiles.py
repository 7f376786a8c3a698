"""The sizes of each report profile: tiny (inside the test suite: tiny random encoders, a few dozen rows), cpu (at
most an hour on a 2-core CPU) and full (the studies' sizes, for a GPU)."""

from __future__ import annotations

from dataclasses import dataclass, field, replace

ZH_MINI = "../shared/models/zh-mini-mlm"
DMR = "../shared/data/douban_dmr/reviews.json"


@dataclass(frozen=True)
class Profile:
    """Every size a section runs at. Seeds draw the data subsets and initialise the heads; several give mean ± std."""

    name: str
    about: str
    en_model: str = "minilm"
    zh_model: str = ZH_MINI
    common: tuple[str, ...] = ("--report_to", "none", "--disable_tqdm", "true", "--dataloader_pin_memory", "false")
    # 1. IMDB frozen vs fine-tuned (also the data of the per-layer probe and the layer choices)
    imdb_train: int | None = 1000
    imdb_eval: int | None = 1000
    imdb_max_length: int = 256
    imdb_frozen_epochs: float = 3
    imdb_finetune_epochs: float = 2
    imdb_finetune_batch: int = 16
    imdb_seeds: tuple[int, ...] = (42,)
    imdb_finetune_seeds: tuple[int, ...] = (42,)
    # 3. Weibo emotion
    weibo_train: int | None = 3000
    weibo_eval: int | None = 1000
    weibo_test: int | None = None
    weibo_epochs: float = 3
    weibo_batch: int = 32
    weibo_max_length: int = 140
    weibo_baseline_all: bool = True  # the TF-IDF baseline also on all of virus_train, not only the model's subset
    # 4. Multi-task, encoder fine-tuned
    multitask_train: int | None = 1000
    multitask_eval: int | None = 500
    multitask_max_length: int = 128
    multitask_epochs: float = 2
    multitask_batch: int = 16
    # 5. Douban ratings (frozen; the 80/20 split of DMR's 1,208 reviews)
    rating_train: int | None = None
    rating_eval: int | None = None
    rating_max_length: int = 128
    rating_epochs: float = 10
    rating_seeds: tuple[int, ...] = (42, 43, 44)
    # 6. Methods ablation: argv for bench/bench_methods.py, or None to read bench/out/methods/methods.json
    methods_argv: tuple[str, ...] | None = None
    extra: dict = field(default_factory=dict)

    def sizes(self) -> list[dict]:
        """The sizes, as the report states them."""
        def n(value):
            return "all" if value is None else f"{value:,}"
        return [
            {"section": "1, 2. IMDB", "sizes": f"{n(self.imdb_train)} train / {n(self.imdb_eval)} test reviews, "
             f"{self.imdb_max_length} tokens; frozen {self.imdb_frozen_epochs:g} epochs (seeds "
             f"{', '.join(map(str, self.imdb_seeds))}), fine-tuned {self.imdb_finetune_epochs:g} epochs, batch "
             f"{self.imdb_finetune_batch} (seeds {', '.join(map(str, self.imdb_finetune_seeds))})"},
            {"section": "3. Weibo", "sizes": f"virus_train {n(self.weibo_train)} / virus_eval {n(self.weibo_eval)} / "
             f"virus_test and usual_test {n(self.weibo_test)} posts, {self.weibo_max_length} tokens, up to "
             f"{self.weibo_epochs:g} epochs, batch {self.weibo_batch}"},
            {"section": "4. Multi-task", "sizes": f"IMDB {n(self.multitask_train)} train / {n(self.multitask_eval)} "
             f"test reviews, {self.multitask_max_length} tokens, {self.multitask_epochs:g} epochs, batch "
             f"{self.multitask_batch}"},
            {"section": "5. Ratings", "sizes": f"DMR Douban train {n(self.rating_train)} / eval {n(self.rating_eval)} "
             f"of the 80/20 split, {self.rating_max_length} tokens, {self.rating_epochs:g} epochs (seeds "
             f"{', '.join(map(str, self.rating_seeds))})"},
        ]


CPU = Profile("cpu", "sized for a quiet 2-core CPU: at most an hour from cold caches")
FULL = Profile(
    "full", "the studies' sizes, for a GPU",
    common=("--report_to", "none", "--disable_tqdm", "true", "--bf16", "true"),
    imdb_train=None, imdb_eval=None, imdb_max_length=512, imdb_frozen_epochs=3, imdb_finetune_epochs=3,
    imdb_finetune_batch=32, imdb_seeds=(42, 43, 44), imdb_finetune_seeds=(42, 43, 44),
    weibo_train=None, weibo_eval=None, weibo_epochs=30, weibo_batch=64, multitask_train=None, multitask_eval=None,
    multitask_max_length=512, multitask_epochs=3, multitask_batch=32, rating_seeds=(42, 43, 44, 45, 46),
)
TINY = Profile(
    "tiny", "tiny random encoders and a few dozen rows, for the test suite (the numbers mean nothing)",
    imdb_train=48, imdb_eval=32, imdb_max_length=32, imdb_frozen_epochs=2, imdb_finetune_epochs=2,
    imdb_finetune_batch=16, imdb_seeds=(42, 43), weibo_train=48, weibo_eval=32, weibo_test=32, weibo_epochs=2,
    weibo_batch=16, weibo_max_length=32, weibo_baseline_all=False, multitask_train=48, multitask_eval=32,
    multitask_max_length=32, multitask_epochs=1, rating_train=48, rating_eval=32, rating_max_length=32,
    rating_epochs=2, rating_seeds=(42, 43),
    methods_argv=("--smoke", "--datasets", "imdb", "--seeds", "42", "--stage", "all"),
)
PROFILES = {p.name: p for p in (TINY, CPU, FULL)}


def with_models(profile: Profile, en_model: str, zh_model: str) -> Profile:
    return replace(profile, en_model=en_model, zh_model=zh_model)
