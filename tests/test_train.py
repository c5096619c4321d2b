"""The training loop: the loss falls, EMA follows the weights, resume is exact, and two-process DDP equals
single-process training on the union of the two processes' batches."""
import os
import subprocess
import sys
import textwrap

import pytest
import torch
from torch import nn

from t2ilab.train import TrainConfig, load_checkpoint, lr_at, train
from t2ilab.train.loop import ema_update

TRUE_W = torch.tensor([[2.0, -1.0, 0.5]])


class Tiny(nn.Module):
    def __init__(self):
        super().__init__()
        self.lin = nn.Linear(3, 1)
        self.drop = nn.Dropout(0.1)  # uses the global RNG, which a resume must restore

    def forward(self, x, y):
        noise = 0.01 * torch.randn_like(y)  # as diffusion losses draw noise
        return ((self.lin(self.drop(x)) - y - noise) ** 2).mean()


def batch_fn(step, rank, world):
    g = torch.Generator().manual_seed(1000 * step + rank)
    x = torch.randn(8, 3, generator=g)
    return x, x @ TRUE_W.T


def step_fn(model, batch):
    loss = model(*batch)
    return loss, {}


def config(**kw):
    return TrainConfig(**{"steps": 30, "lr": 0.05, "warmup_steps": 3, "ema_decay": 0.9, "checkpoint_every": 5,
                          "log_every": 1, "seed": 3, **kw})


def test_loss_falls_and_ema_tracks():
    result = train(Tiny(), step_fn, batch_fn, config(steps=60), progress=False)
    losses = [h["loss"] for h in result.history]
    assert sum(losses[-5:]) / 5 < 0.1 * sum(losses[:5]) / 5
    assert torch.allclose(result.ema.lin.weight, result.model.lin.weight, atol=0.2)
    assert not torch.equal(result.ema.lin.weight, result.model.lin.weight)


def test_ema_update_formula():
    ema, model = nn.Linear(2, 2), nn.Linear(2, 2)
    before = ema.weight.detach().clone()
    ema_update(ema, model, 0.75)
    assert torch.allclose(ema.weight, 0.75 * before + 0.25 * model.weight)


def test_lr_schedule():
    cfg = TrainConfig(steps=110, lr=1.0, warmup_steps=10)
    assert lr_at(0, cfg) == pytest.approx(0.1) and lr_at(9, cfg) == pytest.approx(1.0)
    assert lr_at(10, cfg) == pytest.approx(1.0) and lr_at(109, cfg) == pytest.approx(0.1, abs=1e-3)
    assert lr_at(60, cfg) == pytest.approx(0.55)


def seeded_tiny():
    torch.manual_seed(0)
    return Tiny()


def test_interrupted_and_resumed_run_matches_uninterrupted(tmp_path):
    whole = train(seeded_tiny(), step_fn, batch_fn, config(), out_dir=tmp_path / "whole", progress=False)

    def crashing_batch_fn(step, rank, world):
        if step == 13:
            raise KeyboardInterrupt("simulated interruption")
        return batch_fn(step, rank, world)

    with pytest.raises(KeyboardInterrupt):
        train(seeded_tiny(), step_fn, crashing_batch_fn, config(), out_dir=tmp_path / "split", progress=False)
    assert load_checkpoint(tmp_path / "split" / "checkpoint.pt")["step"] == 10
    resumed = train(Tiny(), step_fn, batch_fn, config(), out_dir=tmp_path / "split", progress=False)  # any init
    for a, b in zip(whole.model.state_dict().values(), resumed.model.state_dict().values()):
        assert torch.equal(a, b)
    for a, b in zip(whole.ema.state_dict().values(), resumed.ema.state_dict().values()):
        assert torch.equal(a, b)
    assert [h["loss"] for h in whole.history] == [h["loss"] for h in resumed.history]


def test_resume_refuses_another_configuration(tmp_path):
    train(Tiny(), step_fn, batch_fn, config(steps=5), out_dir=tmp_path, progress=False)
    with pytest.raises(ValueError, match="another configuration"):
        train(Tiny(), step_fn, batch_fn, config(steps=5, lr=0.1), out_dir=tmp_path, progress=False)


def test_non_finite_loss_stops_with_a_message():
    def bad_step(model, batch):
        return model(*batch) * float("nan"), {}

    with pytest.raises(FloatingPointError, match="learning rate"):
        train(Tiny(), bad_step, batch_fn, config(steps=3), progress=False)


DDP_SCRIPT = textwrap.dedent('''
    import sys, torch
    sys.path.insert(0, {tests!r})
    from test_train import Tiny, batch_fn, step_fn, config
    from t2ilab.train import train, distributed_context
    class NoDropout(Tiny):
        def __init__(self):
            super().__init__(); self.drop = torch.nn.Identity()
        def forward(self, x, y):
            return ((self.lin(x) - y) ** 2).mean()
    torch.manual_seed(0)
    result = train(NoDropout(), step_fn, batch_fn, config(steps=12, ema_decay=None), progress=False)
    rank, world = distributed_context()
    assert world == 2
    if rank == 0:
        torch.save(result.model.state_dict(), {out!r})
''')


def test_two_process_ddp_equals_single_process_on_the_union(tmp_path):
    out = tmp_path / "ddp.pt"
    script = tmp_path / "ddp_run.py"
    script.write_text(DDP_SCRIPT.format(tests=os.path.dirname(__file__), out=str(out)))
    env = dict(os.environ, OMP_NUM_THREADS="1")
    proc = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
                           str(script)], capture_output=True, text=True, timeout=240, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    ddp_state = torch.load(out, weights_only=True)

    class NoDropout(Tiny):
        def __init__(self):
            super().__init__()
            self.drop = nn.Identity()

        def forward(self, x, y):
            return ((self.lin(x) - y) ** 2).mean()

    def union(step, rank, world):
        parts = [batch_fn(step, r, 2) for r in range(2)]
        return torch.cat([p[0] for p in parts]), torch.cat([p[1] for p in parts])

    torch.manual_seed(0)
    single = train(NoDropout(), step_fn, union, config(steps=12, ema_decay=None), progress=False)
    for key, value in single.model.state_dict().items():
        assert torch.allclose(ddp_state[key], value, atol=1e-6), key
