"""The training loop: the loss falls, EMA follows the weights, resume is exact, and two-process DDP equals
single-process training on the union of the two processes' batches."""
import os
import subprocess
import sys
import textwrap

import pytest
import torch
from torch import nn

from t2ilab.train import Phase, TrainConfig, load_checkpoint, lr_at, train
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
    torch.manual_seed(0)  # the initial weights, whatever tests ran before in this process
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


def crashing_at(step_to_crash, batches):
    """`batches`, interrupted (as by Ctrl-C) when the loop asks for step `step_to_crash`."""
    def crashing(step, rank, world):
        if step == step_to_crash:
            raise KeyboardInterrupt("simulated interruption")
        return batches(step, rank, world)

    return crashing


def test_interrupted_and_resumed_run_matches_uninterrupted(tmp_path):
    whole = train(seeded_tiny(), step_fn, batch_fn, config(), out_dir=tmp_path / "whole", progress=False)
    with pytest.raises(KeyboardInterrupt):
        train(seeded_tiny(), step_fn, crashing_at(13, batch_fn), config(), out_dir=tmp_path / "split", progress=False)
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


def run_two_processes(script: str, tmp_path) -> dict:
    """Run a training script (formatted with `tests` and `out`) under torchrun with 2 processes; rank 0's state."""
    out, path = tmp_path / "ddp.pt", tmp_path / "ddp_run.py"
    path.write_text(script.format(tests=os.path.dirname(__file__), out=str(out)))
    env = dict(os.environ, OMP_NUM_THREADS="1")
    proc = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
                           str(path)], capture_output=True, text=True, timeout=240, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return torch.load(out, weights_only=True)


def test_two_process_ddp_equals_single_process_on_the_union(tmp_path):
    ddp_state = run_two_processes(DDP_SCRIPT, tmp_path)

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


# ----------------------------------------------------------------------------------------------------------------
# Two phases: a toy 2-D GAN (discriminator phase, then generator phase)
# ----------------------------------------------------------------------------------------------------------------

DATA_MEAN = torch.tensor([2.0, -1.0])


class ToyGAN(nn.Module):
    """G: z (B, 2) -> x (B, 2); D: x -> logit. The non-saturating GAN losses (Goodfellow et al., 2014)."""

    def __init__(self):
        super().__init__()
        self.generator = nn.Sequential(nn.Linear(2, 16), nn.ReLU(), nn.Linear(16, 2))
        self.discriminator = nn.Sequential(nn.Linear(2, 16), nn.LeakyReLU(0.2), nn.Linear(16, 1))

    def forward(self, phase, real, z):
        if phase == "discriminator":
            with torch.no_grad():
                fake = self.generator(z)
            return (nn.functional.softplus(-self.discriminator(real)).mean()
                    + nn.functional.softplus(self.discriminator(fake)).mean())
        return nn.functional.softplus(-self.discriminator(self.generator(z))).mean()


def gan_batch(step, rank, world):
    g = torch.Generator().manual_seed(7919 * step + rank)
    return DATA_MEAN + 0.1 * torch.randn(16, 2, generator=g), torch.randn(16, 2, generator=g)


def d_step(model, batch):
    return model("discriminator", *batch), {}


def g_step(model, batch):
    return model("generator", *batch), {}


PHASES = [Phase("discriminator", d_step, module="discriminator", lr=4e-3, betas=(0.0, 0.9)),
          Phase("generator", g_step, module="generator", betas=(0.0, 0.9), grad_clip=0)]


def gan_config(**kw):
    return config(**{"lr": 2e-3, "warmup_steps": 5, "ema_decay": 0.9, "ema_module": "generator",
                     "weight_decay": 0.0, **kw})


def seeded_gan():
    torch.manual_seed(0)
    return ToyGAN()


def test_two_phases_train_a_toy_gan_and_keep_the_generators_ema():
    start = seeded_gan().generator(torch.randn(512, 2)).mean(0)
    result = train(seeded_gan(), PHASES, gan_batch, gan_config(steps=800, ema_decay=0.99), progress=False)
    z = torch.randn(512, 2, generator=torch.Generator().manual_seed(0))
    assert (start - DATA_MEAN).norm() > 1.5
    assert (result.model.generator(z).mean(0) - DATA_MEAN).norm() < 0.5
    assert isinstance(result.ema, nn.Sequential) and len(result.ema.state_dict()) == 4  # the generator only
    assert (result.ema(z).mean(0) - DATA_MEAN).norm() < 0.5
    logged = result.history[-1]
    assert {"discriminator_loss", "generator_loss", "discriminator_lr", "generator_lr", "loss"} <= set(logged)
    assert logged["discriminator_lr"] == pytest.approx(2 * logged["generator_lr"])


def test_a_phase_moves_only_its_own_parameters():
    class Leaky(ToyGAN):  # the discriminator loss reaches the generator too (no detach)
        def forward(self, phase, real, z):
            return nn.functional.softplus(self.discriminator(self.generator(z))).mean()

    torch.manual_seed(0)
    model = Leaky()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    train(model, PHASES[:1], gan_batch, gan_config(steps=5, ema_decay=None), progress=False)
    after = model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before if k.startswith("generator"))
    assert not all(torch.equal(before[k], after[k]) for k in before if k.startswith("discriminator"))


def test_a_two_phase_run_resumes_bit_for_bit(tmp_path):
    whole = train(seeded_gan(), PHASES, gan_batch, gan_config(), out_dir=tmp_path / "whole", progress=False)
    with pytest.raises(KeyboardInterrupt):
        train(seeded_gan(), PHASES, crashing_at(13, gan_batch), gan_config(), out_dir=tmp_path / "split", progress=False)
    state = load_checkpoint(tmp_path / "split" / "checkpoint.pt")
    assert state["step"] == 10 and sorted(state["optimizers"]) == ["discriminator", "generator"]
    resumed = train(ToyGAN(), PHASES, gan_batch, gan_config(), out_dir=tmp_path / "split", progress=False)
    for a, b in zip(whole.model.state_dict().values(), resumed.model.state_dict().values()):
        assert torch.equal(a, b)
    for a, b in zip(whole.ema.state_dict().values(), resumed.ema.state_dict().values()):
        assert torch.equal(a, b)
    assert whole.history == [dict(h) for h in resumed.history]
    with pytest.raises(ValueError, match=r"phases \['discriminator', 'generator'\]"):
        train(ToyGAN(), PHASES[1:], gan_batch, gan_config(), out_dir=tmp_path / "split", progress=False)
    with pytest.raises(ValueError, match="another configuration \\(ema_module: 'generator' -> None\\)"):
        train(ToyGAN(), PHASES, gan_batch, gan_config(ema_module=None), out_dir=tmp_path / "split", progress=False)


DDP_GAN_SCRIPT = textwrap.dedent('''
    import sys, torch
    sys.path.insert(0, {tests!r})
    from test_train import PHASES, ToyGAN, gan_batch, gan_config
    from t2ilab.train import train, distributed_context
    torch.manual_seed(0)
    result = train(ToyGAN(), PHASES, gan_batch, gan_config(steps=12), progress=False)
    rank, world = distributed_context()
    assert world == 2
    if rank == 0:
        torch.save(result.model.state_dict(), {out!r})
''')


def test_two_process_ddp_of_a_two_phase_job_equals_single_process_on_the_union(tmp_path):
    ddp_state = run_two_processes(DDP_GAN_SCRIPT, tmp_path)

    def union(step, rank, world):  # every loss is a mean over samples: DDP's averaged gradient is the union's
        parts = [gan_batch(step, r, 2) for r in range(2)]
        return torch.cat([p[0] for p in parts]), torch.cat([p[1] for p in parts])

    single = train(seeded_gan(), PHASES, union, gan_config(steps=12), progress=False)
    for key, value in single.model.state_dict().items():
        assert torch.allclose(ddp_state[key], value, atol=1e-6), key
