"""The `t2ilab` command line.

    t2ilab data [--seed --grid]                         generate (or load) SynthBirds-200 and describe it
    t2ilab train PRESET [--steps --out --resume --device --release]
    t2ilab evaluate NAME [--n --seed --device --set NAME=VALUE ... --write]   re-measure a model, update its card
    t2ilab sample PROMPT --model NAME [--n --seed -o --set NAME=VALUE ... --device]   draw birds for a prompt
    t2ilab zoo list                                     the released models
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

from .errors import UsageError, check_device, check_seed, check_writable_folder


def _data(args: argparse.Namespace) -> int:
    from .data import synthbirds

    start = time.perf_counter()
    fresh = not (synthbirds.cache_dir(args.seed, args.root) / "meta.json").exists()
    data = synthbirds.load(args.seed, args.root)
    seconds = time.perf_counter() - start
    print(f"SynthBirds-200 (seed {args.seed}) at {synthbirds.cache_dir(args.seed, args.root)}")
    print(f"  {'generated' if fresh else 'loaded'} in {seconds:.1f} s")
    print(f"  images {len(data.species)} ({int(data.is_train.sum())} train / {int((~data.is_train).sum())} test), "
          f"{data.images.shape[1]}x{data.images.shape[2]} RGB, {len(data.species_table)} species, "
          f"{len(data.captions[0])} captions per image")
    if args.grid:
        from .viz import save_species_grid

        save_species_grid(args.grid, seed=args.seed, root=args.root)
        print(f"  wrote {args.grid}")
    return 0


def _train(args: argparse.Namespace) -> int:
    import shlex

    from . import release, zoo
    from .metrics.protocol import warn_if_judges_disagree
    from .nn import count_parameters
    from .train import distributed_context, train

    preset = _preset(args.preset)
    for flag in ("steps", "checkpoint_every"):
        if getattr(args, flag) is not None and getattr(args, flag) < 1:
            raise UsageError(f"--{flag.replace('_', '-')} must be at least 1, got {getattr(args, flag)}")
    if args.eval_n is not None:
        _check_n("--eval-n", args.eval_n, preset)
    check_device(args.device)
    if args.release and args.preset in zoo.available() and not args.replace:
        raise UsageError(f"{args.preset} is already released ({zoo.weights_dir() / args.preset}.json); pass --replace "
                         f"to replace it (the released pair stays until the new one is complete), or --out without "
                         f"--release to train aside")
    commit = zoo.git_commit()  # the code that trains, recorded before anything changes
    if args.release and commit.endswith("-dirty"):
        raise UsageError(f"--release needs a clean tree: tracked files have uncommitted changes (HEAD "
                         f"{commit.removesuffix('-dirty')[:12]}); commit or stash them so that the model card "
                         f"names the code that trained it")
    overrides = {"device": args.device}
    if args.steps is not None:
        overrides["steps"] = args.steps
    if args.checkpoint_every is not None:
        overrides["checkpoint_every"] = args.checkpoint_every
    out = args.out or f"runs/{args.preset}"
    checkpoint = Path(out) / "checkpoint.pt"
    release.remove_interrupted_writes(checkpoint)
    job = preset.build_job(**overrides)
    identity = {"preset": preset.name, "model_config": release.plain(job.model.cfg)}
    if args.resume and checkpoint.exists():
        release.check_resumable(checkpoint, identity, job.config.steps)
    rank, world = distributed_context()
    if rank == 0:
        print(f"{preset.name} ({preset.family}, {preset.role}): {preset.description}\n"
              f"  {count_parameters(job.model):,} parameters, {job.config.steps} steps, batch {preset.batch_size} x "
              f"{world} process(es), device {args.device}, checkpoints in {out}")
    # the commits that ran training steps, kept in the checkpoint across resumes and copied into the card
    commits = release.training_commits(checkpoint, args.resume, job.config.steps, commit)
    result = train(job.model, job.phases, job.batch_fn, job.config, out_dir=out, resume=args.resume,
                   extra_state={"commits": commits, **identity}, on_checkpoint=job.monitor)
    if rank != 0:
        return 0
    final = result.ema if result.ema is not None else result.model
    print(f"  done: {result.steps} steps, {result.wall_seconds / 60:.1f} min of training, "
          f"final loss {result.history[-1]['loss']:.4f}")
    if args.release:
        final = final.float().eval()
        metrics = preset.evaluate(final.to(args.device), n=args.eval_n)
        command = "t2ilab " + " ".join(shlex.quote(a) for a in (args.argv or []))
        card = release.model_card(preset, job, result, final, metrics, command=command, commit=commit,
                                  commits=commits, device=args.device, world=world)
        path = zoo.release(preset.name, final.cpu(), card)
        print(f"  released {path} ({path.stat().st_size / 1e6:.1f} MB)\n  metrics: {_short(metrics)}")
        warn_if_judges_disagree(metrics)
    return 0


def _evaluate(args: argparse.Namespace) -> int:
    import json

    from . import release, zoo
    from .metrics.protocol import warn_if_judges_disagree
    from .nn import count_parameters

    preset = _preset(args.name)
    given = _sampling_options(args)
    try:
        options = preset.options(given)  # checked before anything is loaded
    except ValueError as err:
        raise UsageError(str(err)) from None
    check_device(args.device)
    if args.n is not None:
        _check_n("--n", args.n, preset)
    check_seed(args.seed)
    if args.write and not os.access(zoo.weights_dir(), os.W_OK):
        raise UsageError(f"--write: cannot write the model card in {zoo.weights_dir()} (the folder is read-only)")
    zoo.load_card(args.name)  # a missing or damaged card fails before any work
    model = zoo.load(args.name, device=args.device)
    metrics = preset.evaluate(model, n=args.n, seed=args.seed, options=options)
    print(json.dumps(metrics, indent=2))
    warn_if_judges_disagree(metrics)
    if args.write:
        def record(card: dict) -> None:
            """Main metrics (default options, the card's N) or a labelled variant, on the card as it is now."""
            main_n = card.get("metrics", {}).get("n")
            if given or (args.n is not None and main_n not in (None, args.n)):
                card.setdefault("evaluations", {})[release.variant_label(given, options, metrics)] = metrics
            else:
                card["metrics"] = metrics
            card.update(parameters=count_parameters(model), family=card.get("family", preset.family),
                        role=card.get("role", preset.role))

        zoo.update_card(args.name, record)
        print(f"updated {args.name}.json")
    return 0


def _check_n(flag: str, n: int, preset) -> None:
    """N test items to measure on: at least a few for the k-NN metrics of models that draw, at most the test split."""
    from .data.synthbirds import TEST_IMAGES
    from .metrics.protocol import MIN_N

    smallest = MIN_N if preset.role in ("generator", "judge") else 1
    if not smallest <= n <= TEST_IMAGES:
        raise UsageError(f"{flag} must be between {smallest} and {TEST_IMAGES} (the test split) for {preset.name}, "
                         f"got {n}")


def _sampling_options(args: argparse.Namespace) -> dict[str, str]:
    """--set NAME=VALUE pairs, and the shorthands (--steps, --guidance-scale, ...), as one dict of strings."""
    given: dict[str, str] = {}
    for item in args.set or []:
        name, sep, value = item.partition("=")
        if not sep or not name.strip():
            raise UsageError(f"--set takes NAME=VALUE, got {item!r}")
        given[name.strip().replace("-", "_")] = value.strip()
    for dest, value in vars(args).items():
        if dest.startswith(OPTION_PREFIX) and value is not None:
            given[dest.removeprefix(OPTION_PREFIX)] = str(value)
    return given


OPTION_PREFIX = "option_"
MAX_DRAWN = 512  # images one `t2ilab sample` may draw at once (n x rerank): a bound on its memory


def _add_option_shorthands(parser: argparse.ArgumentParser) -> None:
    """--NAME VALUE for every sampling option a recipe declares (recipes.sampling_option_names)."""
    from .recipes import option_limits, sampling_option_names

    for name, families in sampling_option_names().items():
        bound = "".join(f"; {' or '.join(v)}" for k, v in option_limits().items() if k == name)
        parser.add_argument(f"--{name.replace('_', '-')}", dest=OPTION_PREFIX + name, default=None, metavar="VALUE",
                            help=f"shorthand for --set {name}=... ({', '.join(families)}{bound})")


SAMPLE_EXAMPLES = """examples:
  t2ilab sample "a small bird with a red crown and grey wings" --model diffusion-text-birds32 -o birds.png
  t2ilab sample "this bird has a blue breast" --model diffusion-text-birds32 --guidance-scale 6 --steps 50
  t2ilab sample "a bird with yellow wings" --model noisy-classifier-birds32 --n 8 --seed 3
  t2ilab sample --list        the models that draw, their options, and the words captions use
"""


def _sample(args: argparse.Namespace) -> int:
    import dataclasses

    import torch

    from . import zoo
    from .prompts import caption_vocabulary, check_output, check_prompt, save_grid
    from .recipes import PRESETS, describe_options, generators

    drawable = [name for name in generators() if name in zoo.available()]
    if args.list:
        print("models that draw (t2ilab sample PROMPT --model NAME):")
        for name in drawable:
            recipe = PRESETS[name]
            print(f"  {name:<28} {recipe.family}, {recipe.role}; options: {describe_options(recipe.sampling)}")
        words = sorted(set(caption_vocabulary()))
        print(f"\nthe {len(words)} words of the captions:\n  " + " ".join(words))
        return 0
    if args.model is None or args.prompt is None:
        raise UsageError("give a prompt and --model NAME (t2ilab sample --list names the models)")
    if args.model not in drawable:
        raise UsageError(f"unknown model {args.model!r} for sampling; models that draw: {', '.join(drawable)}")
    prompt = check_prompt(args.prompt)
    if not 1 <= args.n <= 256:
        raise UsageError(f"--n must be between 1 and 256 images, got {args.n}")
    check_seed(args.seed)
    out = check_output(Path(args.output))
    check_device(args.device)
    recipe = PRESETS[args.model]
    given = _sampling_options(args)
    try:
        options = recipe.options(given)
    except ValueError as err:
        raise UsageError(str(err)) from None
    drawn = args.n * getattr(options, "rerank", 1)
    if drawn > MAX_DRAWN:
        raise UsageError(f"--n {args.n} with rerank={options.rerank} draws {drawn} images; at most {MAX_DRAWN} at "
                         f"once (lower --n or rerank)")
    model = zoo.load(args.model, device=args.device)
    try:
        draw = recipe.text_to_image(model, options, args.device)
        with torch.no_grad():
            images = draw([prompt] * args.n, torch.Generator().manual_seed(args.seed))
    except ValueError as err:  # a prompt the model's own tokenizer cannot read
        raise UsageError(str(err)) from None
    if not torch.isfinite(images).all():
        raise UsageError(f"{args.model} drew non-finite values with these options "
                         f"({describe_options(options)}): try a smaller guidance scale; nothing was written")
    settings = {"model": args.model, "prompt": prompt, "prompt_read": recipe.reads_captions, "seed": args.seed,
                "n": args.n, "options": dataclasses.asdict(options)}
    save_grid(images, out, prompt, settings)
    print(f"wrote {out} ({args.n} images of {args.model}, seed {args.seed})")
    return 0


def _compare(args: argparse.Namespace) -> int:
    import shlex

    from . import compare
    from .data.synthbirds import TEST_IMAGES
    from .metrics.protocol import MIN_N

    models = [m.strip() for group in args.models or [] for m in group.split(",") if m.strip()]
    if args.models is not None and not models:
        raise UsageError(f"--models names no model (got {args.models}); leave it out to compare them all")
    if args.out and Path(args.out).exists() and not Path(args.out).is_dir():
        raise UsageError(f"--out must be a folder; {args.out} is a file")
    for name in models:
        if _preset(name).role not in ("generator", "judge"):
            raise UsageError(f"{name} is a {_preset(name).role}, not a generator; compare draws images")
    for flag, value in (("--n", args.n), ("--sweep-n", args.sweep_n), ("--slow-n", args.slow_n)):
        if not MIN_N <= value <= TEST_IMAGES:
            raise UsageError(f"{flag} must be between {MIN_N} and {TEST_IMAGES} (the test split), got {value}")
    if args.threads is not None and not 1 <= args.threads <= 512:
        raise UsageError(f"--threads must be between 1 and 512, got {args.threads}")
    check_seed(args.seed)
    check_device(args.device)
    check_writable_folder(compare.cache_folder(args.cache_dir), "compare's cache (--cache-dir)")
    result = compare.run(models or None, n=args.n, sweep_n=args.sweep_n, slow_n=args.slow_n, seed=args.seed,
                         threads=args.threads, device=args.device, cache_dir=args.cache_dir, sweeps=args.sweeps,
                         memory=args.memory, lookups=args.lookups)
    print(compare.markdown(result))
    failed = [row["model"] for row in result["rows"] if "error" in row]
    if failed:
        print(f"WARNING: not measured: {', '.join(failed)} (see the table)", file=sys.stderr)
    if args.out:
        paths = compare.write(result, args.out, "t2ilab compare " + shlex.join(args.argv[1:]))
        print(f"wrote {', '.join(map(str, paths))}")
    return 0


def _zoo(args: argparse.Namespace) -> int:
    from . import zoo

    if args.action == "pack":
        names = args.names or zoo.available()
        unknown = sorted(set(names) - set(zoo.available()))
        if unknown:
            raise UsageError(f"no released model {', '.join(unknown)}; known: {', '.join(zoo.available())}")
        for name in names:
            path = zoo.pack(name)
            card = zoo.load_card(name)
            print(f"{name}: {card['size_bytes'] / 1e6:.2f} MB -> {path.name} {path.stat().st_size / 1e6:.2f} MB")
        return 0
    print(zoo.table(metrics=True))
    total = sum(f.stat().st_size for f in zoo.weights_dir().glob("*.safetensors*"))
    print(f"\nall weights together: {total / 1e6:.1f} MB")
    return 0


def _preset(name: str):
    from .recipes import PRESETS

    if name not in PRESETS:
        raise UsageError(f"unknown model or preset {name!r}; known: {', '.join(sorted(PRESETS))}")
    return PRESETS[name]


def _short(metrics: dict) -> str:
    return ", ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in metrics.items())


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="t2ilab", description="Text-to-image generation, three ways.")
    sub = parser.add_subparsers(dest="command", required=True)
    data = sub.add_parser("data", help="generate (or load) SynthBirds-200 and print its figures")
    data.add_argument("--seed", type=int, default=0, help="data seed (default 0)")
    data.add_argument("--root", default=None, help="cache folder (default $T2ILAB_HOME or ~/.cache/t2ilab)")
    data.add_argument("--grid", default=None, help="also save a PNG grid of 8 species x 8 images here")
    data.set_defaults(func=_data)

    train = sub.add_parser("train", help="train a preset (resumable); --release writes weights and a model card")
    train.add_argument("preset", help="preset name, e.g. clip-birds or evaluator-birds")
    train.add_argument("--steps", type=int, default=None, help="override the preset's number of steps")
    train.add_argument("--out", default=None, help="checkpoint folder (default runs/PRESET)")
    train.add_argument("--resume", action=argparse.BooleanOptionalAction, default=True,
                       help="continue from OUT/checkpoint.pt if present (default yes)")
    train.add_argument("--device", default="cpu", help="cpu (default), cuda, cuda:1, ...")
    train.add_argument("--checkpoint-every", type=int, default=None,
                       help="steps between checkpoints (default: the preset's, 200); the last step is always saved")
    train.add_argument("--release", action="store_true", help="evaluate and release into t2ilab/zoo/weights")
    train.add_argument("--replace", action="store_true", help="with --release: replace a released model of this name")
    train.add_argument("--eval-n", type=int, default=None, help="N for the release evaluation (default: preset's)")
    train.set_defaults(func=_train)

    evaluate = sub.add_parser("evaluate", help="measure a released model (the metrics of its card)")
    evaluate.add_argument("name")
    evaluate.add_argument("--n", type=int, default=None, help="number of test items (default: all)")
    evaluate.add_argument("--seed", type=int, default=0)
    evaluate.add_argument("--device", default="cpu")
    evaluate.add_argument("--set", action="append", metavar="NAME=VALUE",
                          help="a sampling option of the model (repeatable), e.g. --set guidance_scale=3 --set steps=50; "
                               "an unknown option is refused with the valid ones")
    _add_option_shorthands(evaluate)
    evaluate.add_argument("--write", action="store_true",
                          help="store the metrics in the model card (runs with sampling options or another --n than "
                               "the card's main metrics go under 'evaluations')")
    evaluate.set_defaults(func=_evaluate)

    sample = sub.add_parser("sample", help="draw birds for your own prompt with a released model",
                            epilog=SAMPLE_EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    sample.add_argument("prompt", nargs="?", help="the caption, in the words the captions use (see --list)")
    sample.add_argument("--model", help="a released model that draws (see --list)")
    sample.add_argument("--n", type=int, default=16, help=f"how many images (default 16; n x rerank <= {MAX_DRAWN})")
    sample.add_argument("--seed", type=int, default=0, help="the generator's seed (default 0)")
    sample.add_argument("-o", "--output", default="birds.png", help="the PNG to write (default birds.png)")
    sample.add_argument("--device", default="cpu", help="cpu (default), cuda, cuda:1, ...")
    sample.add_argument("--set", action="append", metavar="NAME=VALUE", help="any sampling option of the model")
    _add_option_shorthands(sample)
    sample.add_argument("--list", action="store_true", help="list the models and the caption words, then stop")
    sample.set_defaults(func=_sample)

    comp = sub.add_parser("compare", help="every released generator under one protocol, knobs swept, one table")
    comp.add_argument("--models", action="append", help="comma-separated generators or guiding judges (default: every released one)")
    comp.add_argument("--n", type=int, default=2000, help="test captions of the main table (default 2000)")
    comp.add_argument("--sweep-n", type=int, default=300, help="test captions of each swept knob setting (default 300)")
    comp.add_argument("--slow-n", type=int, default=50,
                      help="test captions of settings with more than 400 network evaluations per image (default 50)")
    comp.add_argument("--sweeps", action=argparse.BooleanOptionalAction, default=True,
                      help="sweep each generator's quality-speed knob (default yes)")
    comp.add_argument("--lookups", action=argparse.BooleanOptionalAction, default=True,
                      help="add the lookup rows (training images for each caption; default yes)")
    comp.add_argument("--memory", action=argparse.BooleanOptionalAction, default=True,
                      help="measure each generator's sampling memory in a fresh process (default yes)")
    comp.add_argument("--threads", type=int, default=None, help="torch threads for every model (default: torch's)")
    comp.add_argument("--seed", type=int, default=0)
    comp.add_argument("--device", default="cpu")
    comp.add_argument("--cache-dir", default=None, help="where measured points are kept (default $T2ILAB_HOME/compare)")
    comp.add_argument("--out", default=None, help="write compare.json and compare.md into this folder")
    comp.set_defaults(func=_compare)

    zoo = sub.add_parser("zoo", help="the released models")
    zoo.add_argument("action", choices=["list", "pack"],
                     help="list: the table of released models; pack: store plain .safetensors weights packed (lossless)")
    zoo.add_argument("names", nargs="*", help="with pack: the models (default: all)")
    zoo.set_defaults(func=_zoo)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    args = parser.parse_args(argv)
    args.argv = argv
    try:
        return args.func(args)
    except UsageError as err:
        parser.exit(2, f"t2ilab {args.command}: error: {err}\n")


if __name__ == "__main__":
    sys.exit(main())
