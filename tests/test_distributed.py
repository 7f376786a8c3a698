"""Multi-process CPU launches: one gloo group that trains one model, or a refusal that names the fix."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from toolkit.args import ToolkitTrainingArguments
from toolkit.training import distributed
from toolkit.training.distributed import choose_ddp_backend

ROOT = Path(__file__).resolve().parents[1]
LAUNCH_VARS = ("WORLD_SIZE", "RANK", "LOCAL_RANK", "LOCAL_WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT", "PMI_SIZE",
               "OMPI_COMM_WORLD_SIZE", "MV2_COMM_WORLD_SIZE", "ACCELERATE_USE_CPU", "ACCELERATE_DYNAMO_BACKEND",
               "ACCELERATE_MIXED_PRECISION")
TORCHRUN_2 = {"WORLD_SIZE": "2", "RANK": "0", "LOCAL_RANK": "0", "LOCAL_WORLD_SIZE": "2", "MASTER_ADDR": "localhost",
              "MASTER_PORT": "29511"}
# What the child of `accelerate launch --cpu --num_processes 2` sees (accelerate 1.15): no rank, no world size.
ACCELERATE_CPU_2 = {"ACCELERATE_USE_CPU": "True", "ACCELERATE_DYNAMO_BACKEND": "NO",
                    "ACCELERATE_MIXED_PRECISION": "no", "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": "29500"}


@pytest.fixture
def launch_env(monkeypatch):
    """A clean launcher environment on a machine without GPUs; returns a setter for the variables of a launch."""
    for name in LAUNCH_VARS:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(distributed, "has_ddp_device", lambda: False)

    def launch(variables, gpu=False):
        for name, value in variables.items():
            monkeypatch.setenv(name, value)
        monkeypatch.setattr(distributed, "has_ddp_device", lambda: gpu)

    return launch


@pytest.mark.parametrize("backend", [None, "gloo"])
def test_torchrun_on_cpu_becomes_one_gloo_group(launch_env, backend):
    launch_env(TORCHRUN_2)
    assert choose_ddp_backend(backend, False) == ("gloo", True)
    assert choose_ddp_backend(backend, True) == ("gloo", True)


@pytest.mark.parametrize("variables", [{"WORLD_SIZE": "1", "RANK": "0", "LOCAL_RANK": "0"}, {"PMI_SIZE": "2"}],
                         ids=["torchrun-1", "mpirun-2"])
def test_one_process_torchrun_and_mpirun_on_cpu_use_gloo(launch_env, variables):
    launch_env(variables)
    assert choose_ddp_backend(None, False) == ("gloo", True)


@pytest.mark.parametrize("backend", ["nccl", "ccl", "cpu:gloo,cuda:nccl"])
def test_a_gpu_backend_on_cpu_is_refused_with_the_fix(launch_env, backend):
    launch_env(TORCHRUN_2)
    with pytest.raises(ValueError, match=f"--ddp_backend {backend} cannot run on CPU .*--ddp_backend gloo"):
        choose_ddp_backend(backend, False)


def test_use_cpu_on_a_gpu_machine_needs_a_cpu_backend(launch_env):
    launch_env({**TORCHRUN_2, "ACCELERATE_USE_CPU": "true"}, gpu=True)
    assert choose_ddp_backend(None, False) == ("gloo", True)
    with pytest.raises(ValueError, match=r"--ddp_backend nccl .*\(--use_cpu, 2 processes\)"):
        choose_ddp_backend("nccl", True)


def test_mpi_backend_needs_an_mpi_build(launch_env):
    import torch.distributed

    launch_env(TORCHRUN_2)
    if torch.distributed.is_mpi_available():
        assert choose_ddp_backend("mpi", False) == ("mpi", True)
    else:
        with pytest.raises(ValueError, match="--ddp_backend mpi: .*no MPI"):
            choose_ddp_backend("mpi", False)


@pytest.mark.parametrize("backend", [None, "nccl", "gloo"])
def test_gpus_keep_the_users_choice(launch_env, backend):
    launch_env(TORCHRUN_2, gpu=True)
    assert choose_ddp_backend(backend, False) == (backend, False)


def test_one_plain_process_drops_the_backend(launch_env):
    """Without a launcher a backend only fails ("Default process group has not been initialized")."""
    assert choose_ddp_backend("gloo", False) == (None, False)
    assert choose_ddp_backend("nccl", True) == (None, True)


def test_accelerate_running_one_of_several_processes_is_refused(launch_env):
    launch_env(ACCELERATE_CPU_2)
    with pytest.raises(ValueError, match="accelerate launch ran one process .*cpu_ddp.yaml"):
        choose_ddp_backend(None, False)


def test_accelerate_with_one_process_is_fine(launch_env):
    launch_env({k: v for k, v in ACCELERATE_CPU_2.items() if not k.startswith("MASTER_")})
    assert choose_ddp_backend(None, True) == (None, True)


def test_training_arguments_apply_the_choice(launch_env, tmp_path):
    """ToolkitTrainingArguments calls choose_ddp_backend before transformers sets up the devices."""
    args = ToolkitTrainingArguments(output_dir=str(tmp_path), report_to="none", ddp_backend="gloo")
    assert args.ddp_backend is None and args.world_size == 1
    launch_env(ACCELERATE_CPU_2)
    with pytest.raises(ValueError, match="cpu_ddp.yaml"):
        ToolkitTrainingArguments(output_dir=str(tmp_path), report_to="none")


# ---- real launches ------------------------------------------------------------------------------------------------

SPY = f"""\
import hashlib, importlib.util, json, os, sys
import torch
import toolkit.training.run as run
captured = {{}}
original = run.train_and_report
def spy(trainer, *args):
    captured['trainer'] = trainer
    return original(trainer, *args)
run.train_and_report = spy
spec = importlib.util.spec_from_file_location('imdb_recipe', {str(ROOT / 'recipes' / 'imdb.py')!r})
recipe = importlib.util.module_from_spec(spec)
spec.loader.exec_module(recipe)
recipe.main(sys.argv[1:])
trainer = captured['trainer']
weights = torch.nn.utils.parameters_to_vector(trainer.model.parameters()).detach()
out = sys.argv[sys.argv.index('--output_dir') + 1]
with open(os.path.join(out, 'rank-' + os.environ.get('RANK', 'none') + '.json'), 'w') as f:
    json.dump({{'world': trainer.args.world_size, 'rank': trainer.args.process_index,
               'parallel_mode': trainer.args.parallel_mode.value, 'steps': trainer.state.global_step,
               'weights': hashlib.sha256(weights.numpy().tobytes()).hexdigest(),
               'evals': [e['eval_accuracy'] for e in trainer.state.log_history if 'eval_accuracy' in e]}}, f)
"""


def recipe_argv(tiny_bert, shared_data, out):
    return [
        "--model_name_or_path", str(tiny_bert), "--data_dir", str(shared_data), "--output_dir", str(out),
        "--mode", "finetune", "--max_train_samples", "64", "--max_eval_samples", "40", "--max_length", "64",
        "--per_device_train_batch_size", "16", "--num_train_epochs", "2", "--learning_rate", "1e-3",
        "--report_to", "none", "--save_strategy", "no", "--dataloader_pin_memory", "false",
    ]


def launch(tmp_path, launcher, out, argv):
    """Run the recipe (with a spy that writes one rank-<RANK>.json per process) under ``launcher``."""
    script = tmp_path / "spy.py"
    script.write_text(SPY)
    env = {k: v for k, v in os.environ.items() if k not in LAUNCH_VARS}
    env.update(OMP_NUM_THREADS="1", PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")])))
    return subprocess.run([sys.executable, *launcher, str(script), *argv], env=env, cwd=ROOT, capture_output=True,
                          text=True, timeout=300)


def steps(out):
    return json.loads((out / "trainer_state.json").read_text())["global_step"]


def check_one_model_of_two(out, proc):
    assert proc.returncode == 0, proc.stderr[-3000:]
    ranks = [json.loads(p.read_text()) for p in sorted(out.glob("rank-*.json"))]
    assert len(ranks) == 2, proc.stderr[-3000:]
    assert [(r["world"], r["rank"], r["parallel_mode"]) for r in ranks] == [(2, i, "distributed") for i in (0, 1)]
    assert [r["steps"] for r in ranks] == [4, 4] and steps(out) == 4, "64 rows / (16 x 2 ranks) x 2 epochs"
    assert ranks[0]["weights"] == ranks[1]["weights"], "gradients were not synced"
    assert ranks[0]["evals"] == ranks[1]["evals"] and len(ranks[0]["evals"]) == 2
    saved = json.loads((out / "results.json").read_text())
    assert saved["eval_examples"] == 40 and len(saved["epochs"]) == 2


@pytest.mark.slow
def test_torchrun_on_cpu_without_flags_is_one_ddp_run(tmp_path, tiny_bert, shared_data):
    """Plain torchrun, no --ddp_backend, no --use_cpu: one group of two, half the steps of one process, one model."""
    single = tmp_path / "single"
    proc = launch(tmp_path, [], single, recipe_argv(tiny_bert, shared_data, single))
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert json.loads((single / "rank-none.json").read_text())["world"] == 1 and steps(single) == 8
    out = tmp_path / "ddp"
    proc = launch(tmp_path, ["-m", "torch.distributed.run", "--nproc_per_node", "2"], out,
                  recipe_argv(tiny_bert, shared_data, out))
    check_one_model_of_two(out, proc)


@pytest.mark.slow
def test_accelerate_cpu_ddp_config_is_one_ddp_run(tmp_path, tiny_bert, shared_data):
    """The committed accelerate config starts two workers that train one model; --cpu would run one, and is refused."""
    out = tmp_path / "accelerate"
    config = ROOT / "recipes" / "accelerate_configs" / "cpu_ddp.yaml"
    proc = launch(tmp_path, ["-m", "accelerate.commands.launch", "--config_file", str(config)], out,
                  recipe_argv(tiny_bert, shared_data, out))
    check_one_model_of_two(out, proc)

    refused = tmp_path / "refused"
    proc = launch(tmp_path, ["-m", "accelerate.commands.launch", "--cpu", "--num_processes", "2"], refused,
                  recipe_argv(tiny_bert, shared_data, refused))
    assert proc.returncode != 0 and "cpu_ddp.yaml" in proc.stderr, proc.stderr[-3000:]
    assert not (refused / "results.json").exists()
