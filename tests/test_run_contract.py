"""The run contract's defaults: a recipe's own output folder when none is given, never transformers' shared one."""

from toolkit.args import DataArguments, ModelArguments, ToolkitTrainingArguments, parse_args
from toolkit.training.run import default_output_dir


def test_recipe_default_folder_applies_when_no_output_dir_is_given():
    _, _, training_args = parse_args((ModelArguments, DataArguments, ToolkitTrainingArguments),
                                     ["--report_to", "none", "--mode", "frozen"])
    default_output_dir(training_args, "rating", "douban_dmr-classification-frozen")
    assert training_args.output_dir == "runs/rating-douban_dmr-classification-frozen"


def test_a_given_output_dir_is_kept():
    _, _, training_args = parse_args((ModelArguments, DataArguments, ToolkitTrainingArguments),
                                     ["--report_to", "none", "--output_dir", "elsewhere"])
    default_output_dir(training_args, "imdb", "frozen")
    assert training_args.output_dir == "elsewhere"
