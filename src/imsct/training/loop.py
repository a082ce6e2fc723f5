"""Training loop: Adam, cosine annealing, early stopping on the validation loss, best checkpoint,
per-epoch checkpoints that a killed job resumes from, a per-epoch log TSV and a loss-curve PNG.

Checkpoints hold only tensors and plain Python values and are loaded with ``weights_only=True``;
all randomness (shuffling, augmentation) comes from one torch Generator whose state is checkpointed,
so a resumed run continues exactly where it stopped.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from ..config import SCHEDULING_KEYS
from ..io import atomic_path, write_json, write_tsv
from ..models.unet3d import ModifiedUNet3D, count_parameters
from ..viz import save_figure
from .augment import augment_windows, drop_modality, jitter_intensity, mirror_samples
from .losses import loss_function

log = logging.getLogger(__name__)


@dataclass
class TrainConfig:
    kind: str  # "cord" or "tumor"
    in_channels: int
    out_channels: int
    class_names: tuple[str, ...]
    base_filters: int = 8
    downsamplings: int = 4  # stride-2 convolutions; the published network (paper "depth 4") has 4
    dropout: float = 0.3
    batch_size: int = 1
    lr: float = 1e-3
    max_epochs: int = 200
    patience: int = 50
    min_delta: float = 0.001
    seed: int = 0
    threads: int = 2
    device: str = "auto"  # auto | cpu | cuda
    # auto | channels_last | contiguous (see memory_format); the same computation, not part of the recipe
    memory_format: str = "auto"
    # auto | bf16 | fp32: bfloat16 autocast where the device computes it natively (see autocast_bf16);
    # ivadomed trained in fp32
    precision: str = "auto"
    # spatial (the paper) and, not in the paper, intensity (contrast, brightness; 0 = off) augmentation
    augment: dict = field(default_factory=lambda: {"rotation_deg": 5.0, "scale": 0.10, "translation": 0.03})
    spacing_xyz: tuple = (2.0, 1.0, 1.0)  # working grid (mm, array order), for augmentation in mm
    # nnU-Net-style: this fraction of each batch is drawn among patches holding target voxels (0 = the
    # paper: every patch once per epoch, in random order); by "lesion" (any patch holding any target
    # voxel) or by "class" (nnU-Net: an output class first, uniformly, then a patch holding it)
    lesion_oversampling: float = 0.0
    lesion_oversampling_by: str = "lesion"
    # not in the paper (4.5.2): probability that a training sample's T1w channel is zeroed (0 = the paper)
    modality_dropout: float = 0.0
    # not in the paper (dice there): dice_bce adds binary cross-entropy (see imsct.training.losses)
    loss: str = "dice"
    max_epoch_seconds: float | None = None  # stop an epoch early on slow machines (demo); None = off


INTENSITY_AUGMENT = ("contrast", "brightness")  # keys of TrainConfig.augment, in jitter_intensity's order
NON_AFFINE_AUGMENT = (*INTENSITY_AUGMENT, "mirror")  # keys of TrainConfig.augment that augment_windows does not take


def pick_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("device 'cuda' requested but CUDA is not available")
    return torch.device(name)


def memory_format(cfg: TrainConfig, device: torch.device) -> torch.memory_format:
    """The training tensors' layout. ``auto``: channels-last on CPU, where oneDNN's 3-D convolutions
    (their backward above all, four times the forward in the default layout) run about a quarter
    faster in it (demo tumor model, 2 threads: 1.59 -> 1.21 s a batch; ``benchmarks/run.py
    --training-only cpu``); contiguous on CUDA, where it is not measured."""
    if cfg.memory_format not in ("auto", "channels_last", "contiguous"):
        raise ValueError(f"memory_format {cfg.memory_format!r} (auto, channels_last or contiguous)")
    last = cfg.memory_format == "channels_last" or (cfg.memory_format == "auto" and device.type == "cpu")
    return torch.channels_last_3d if last else torch.contiguous_format


def native_bf16(device: torch.device) -> bool:
    """Whether ``device`` runs bfloat16 convolutions in hardware: CUDA with bf16 support, or a CPU
    with AVX512-BF16 or AMX (oneDNN's bf16 kernels; elsewhere it emulates them, slower than fp32)."""
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    if device.type != "cpu":
        return False
    cpu = torch.cpu  # private probes (torch 2.x); a torch without them gets fp32
    return any(bool(getattr(cpu, probe, lambda: False)()) for probe in
               ("_is_avx512_bf16_supported", "_is_amx_tile_supported"))


def autocast_bf16(cfg: TrainConfig, device: torch.device) -> bool:
    """Train (forward, loss, validation) under bfloat16 autocast? ``auto``: where the device has it
    natively (:func:`native_bf16`): CUDA, and CPUs with AVX512-BF16/AMX, where the demo's tumor model
    trains about 1.7x faster (``benchmarks/run.py --training-only cpu``). Not in the paper (ivadomed
    trained in fp32: ``precision: fp32`` in ``paper.yaml``). Weights, optimiser and loss stay fp32."""
    if cfg.precision not in ("auto", "bf16", "fp32"):
        raise ValueError(f"precision {cfg.precision!r} (auto, bf16 or fp32)")
    return cfg.precision == "bf16" or (cfg.precision == "auto" and native_bf16(device))


def build_model(cfg: TrainConfig) -> ModifiedUNet3D:
    return ModifiedUNet3D(cfg.in_channels, cfg.out_channels, cfg.base_filters, cfg.downsamplings, cfg.dropout)


def _stack(samples, idx):
    x = torch.from_numpy(np.stack([samples[i][0] for i in idx]).astype(np.float32))
    y = torch.from_numpy(np.stack([samples[i][1] for i in idx]).astype(np.float32))
    return x, y


def epoch_patches(crops, cfg: TrainConfig, gen: torch.Generator, device) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Every window of every crop, each window with a fresh random affine of its whole crop (on
    ``device``), as ivadomed samples sub-volumes; then, with ``modality_dropout``, some samples lose
    their T1w channel (:func:`imsct.training.augment.drop_modality`). With ``augment`` contrast or
    brightness, each sample's channels are jittered first (:func:`imsct.training.augment.jitter_intensity`),
    and with ``augment`` mirror, before that, flipped (:func:`imsct.training.augment.mirror_samples`)."""
    spatial = {k: v for k, v in cfg.augment.items() if k not in NON_AFFINE_AUGMENT}
    out = []
    for c in crops:
        x = torch.from_numpy(c.x.astype(np.float32)).to(device)
        y = torch.from_numpy(c.y.astype(np.float32)).to(device)
        out += augment_windows(x, y, c.windows, gen, cfg.spacing_xyz, **spatial)
    out = mirror_samples(out, cfg.augment.get("mirror", ()), gen)
    out = jitter_intensity(out, *(float(cfg.augment.get(k, 0.0)) for k in INTENSITY_AUGMENT), gen)
    return drop_modality(out, cfg.modality_dropout, gen)


def batch_order(patches, cfg: TrainConfig, gen: torch.Generator) -> list[list[int]]:
    """Shuffled batches over the epoch's patches; with ``lesion_oversampling`` > 0 the last
    round(fraction x batch) places of each batch are drawn among patches holding target voxels: by
    ``class`` as nnU-Net (an output class chosen uniformly among those some patch holds, then a patch
    holding it, so a rare class such as edema is drawn as often as the tumor) or by ``lesion`` (among
    all patches holding any target voxel)."""
    order = torch.randperm(len(patches), generator=gen).tolist()
    batches = [order[i:i + cfg.batch_size] for i in range(0, len(order), cfg.batch_size)]
    k = int(round(cfg.lesion_oversampling * cfg.batch_size))
    if not k or not patches:
        return batches
    if cfg.lesion_oversampling_by == "lesion":  # the draws of versions before lesion_oversampling_by
        fg = [i for i, (_, y) in enumerate(patches) if bool(y.any())]
        if fg:
            for b in batches:
                picks = torch.randint(0, len(fg), (min(k, len(b)),), generator=gen).tolist()
                b[len(b) - len(picks):] = [fg[p] for p in picks]
        return batches
    if cfg.lesion_oversampling_by != "class":
        raise ValueError(f"lesion_oversampling_by: {cfg.lesion_oversampling_by!r} (class or lesion)")
    pools = [[i for i, (_, y) in enumerate(patches) if bool(y[c].any())] for c in range(len(patches[0][1]))]
    pools = [p for p in pools if p]
    if pools:
        for b in batches:
            for j in range(len(b) - min(k, len(b)), len(b)):
                pool = pools[int(torch.randint(0, len(pools), (1,), generator=gen))]
                b[j] = pool[int(torch.randint(0, len(pool), (1,), generator=gen))]
    return batches


def _evaluate(model, samples, cfg, device, amp, layout=torch.contiguous_format):
    model.eval()
    criterion = loss_function(cfg.loss)
    losses, inter, denom = [], None, None
    with torch.no_grad(), torch.autocast(device.type, dtype=torch.bfloat16, enabled=amp):
        for start in range(0, len(samples), cfg.batch_size):
            x, y = _stack(samples, range(start, min(start + cfg.batch_size, len(samples))))
            x, y = x.to(device).contiguous(memory_format=layout), y.to(device)
            p = model(x).float()
            losses.append(float(criterion(p, y)) * len(x))
            dims = (0, 2, 3, 4)
            pb = (p >= 0.5).float()
            i, d = (pb * y).sum(dims), pb.sum(dims) + y.sum(dims)
            inter = i if inter is None else inter + i
            denom = d if denom is None else denom + d
    dice = torch.where(denom > 0, 2 * inter / denom.clamp(min=1e-6), torch.full_like(denom, float("nan")))
    return sum(losses) / max(len(samples), 1), dice.cpu().numpy()


def _save(obj, path: Path):
    with atomic_path(path) as tmp:
        torch.save(obj, tmp)


def train(cfg: TrainConfig, train_crops: list, val_crops: list, out_dir) -> dict:
    """Train on in-memory crops (:class:`imsct.training.data.Crop`; training crops augmented each
    epoch, then cut into their windows; validation windows as they are) and write into ``out_dir``:
    ``last.pt`` (every epoch), ``best.pt``, ``log.tsv``, ``loss.png``, ``summary.json``."""
    val_samples = [p for c in val_crops for p in c.patches()]
    if not train_crops or not val_samples:
        raise ValueError(f"{cfg.kind} model: need training and validation samples "
                         f"(got {len(train_crops)} and {len(val_samples)})")
    if not 0 <= cfg.modality_dropout <= 1 or (cfg.modality_dropout and cfg.in_channels < 2):
        raise ValueError(f"{cfg.kind} model: modality_dropout {cfg.modality_dropout} must be a probability, and "
                         f"needs a T1w channel (this model has {cfg.in_channels} input channel(s))")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    torch.set_num_threads(cfg.threads)
    device = pick_device(cfg.device)
    amp = autocast_bf16(cfg, device)
    torch.manual_seed(cfg.seed)
    gen = torch.Generator().manual_seed(cfg.seed)
    layout = memory_format(cfg, device)
    model = build_model(cfg).to(device, memory_format=layout)
    criterion = loss_function(cfg.loss)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=cfg.max_epochs)
    state = {"epoch": -1, "best_val": math.inf, "best_epoch": -1, "bad_epochs": 0, "history": []}
    last = out / "last.pt"
    fingerprint = _fingerprint(cfg, [(c.x, c.y) for c in train_crops], val_samples, amp)
    best_model = None  # the best weights, kept in last.pt too: a rerun may have lost best.pt
    ck = torch.load(last, map_location=device, weights_only=True) if last.exists() else None
    if ck is not None and ck.get("fingerprint") != fingerprint:
        log.warning("%s: written for other data or settings; training %s from scratch", last, cfg.kind)
        ck = None
    if ck is not None:
        model.load_state_dict(ck["model"])
        best_model = ck.get("best_model")
        opt.load_state_dict(ck["optimizer"])
        sched.load_state_dict(ck["scheduler"])
        gen.set_state(ck["generator"])
        torch.set_rng_state(ck["torch_rng"])  # dropout masks continue where they stopped
        if device.type == "cuda" and "cuda_rng" in ck:
            torch.cuda.set_rng_state(ck["cuda_rng"], device)
        state = {k: ck[k] for k in state}
        log.info("resuming %s training after epoch %d", cfg.kind, state["epoch"])
    log.info("%s model: %d parameters, %d train crops (%d patches) / %d val patches, device %s, %s",
             cfg.kind, count_parameters(model), len(train_crops), sum(len(c.windows) for c in train_crops),
             len(val_samples), device, "bf16 autocast" if amp else "fp32")

    for epoch in range(state["epoch"] + 1, cfg.max_epochs):
        if state["bad_epochs"] >= cfg.patience:
            break
        t0 = time.perf_counter()
        model.train()
        patches = epoch_patches(train_crops, cfg, gen, device)
        total, seen = 0.0, 0
        for idx in batch_order(patches, cfg, gen):
            x = torch.stack([patches[i][0] for i in idx]).contiguous(memory_format=layout)
            y = torch.stack([patches[i][1] for i in idx])
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=amp):
                loss = criterion(model(x), y)
            if not torch.isfinite(loss):
                raise FloatingPointError(
                    f"{cfg.kind} model: training loss is {loss.item()} in epoch {epoch} "
                    f"({'bf16 autocast' if amp else 'fp32'}, device {device}); nothing was learnt from here "
                    f"on{' (try training.precision: fp32)' if amp else ''}")
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            total += float(loss.detach()) * len(x)
            seen += len(x)
            if cfg.max_epoch_seconds and time.perf_counter() - t0 > cfg.max_epoch_seconds:
                break
        sched.step()
        train_s = time.perf_counter() - t0
        val_loss, val_dice = _evaluate(model, val_samples, cfg, device, amp, layout)
        row = {"epoch": epoch, "train_loss": total / seen, "val_loss": val_loss,
               **{f"val_dice_{c}": float(d) for c, d in zip(cfg.class_names, val_dice)},
               "lr": opt.param_groups[0]["lr"], "seconds": time.perf_counter() - t0,
               "train_seconds": train_s, "train_samples_per_s": seen / train_s}
        state["history"].append(row)
        if val_loss < state["best_val"] - cfg.min_delta:
            state.update(best_val=val_loss, best_epoch=epoch, bad_epochs=0)
            best_model = {k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items()}
            _save({"model": best_model, "epoch": epoch, "config": _plain(cfg)}, out / "best.pt")
        else:
            state["bad_epochs"] += 1
        state["epoch"] = epoch
        rng = {"torch_rng": torch.get_rng_state()}
        if device.type == "cuda":
            rng["cuda_rng"] = torch.cuda.get_rng_state(device)
        _save({"model": model.state_dict(), "optimizer": opt.state_dict(), "scheduler": sched.state_dict(),
               "generator": gen.get_state(), **rng, **state, "best_model": best_model, "fingerprint": fingerprint},
              last)
        write_tsv(pd.DataFrame(state["history"]), out / "log.tsv")
        log.info("epoch %d: train %.4f val %.4f dice %s (%.1f s)", epoch, row["train_loss"], val_loss,
                 np.round(val_dice, 3).tolist(), row["seconds"])
    hist = pd.DataFrame(state["history"])
    # outputs a rerun may have deleted (Snakemake removes a job's outputs, not last.pt, before rerunning)
    if best_model is not None and not (out / "best.pt").exists():
        _save({"model": best_model, "epoch": state["best_epoch"], "config": _plain(cfg)}, out / "best.pt")
    write_tsv(hist, out / "log.tsv")
    best = hist.loc[hist["epoch"] == state["best_epoch"]].iloc[0].to_dict() if state["best_epoch"] >= 0 else {}
    summary = {"kind": cfg.kind, "best_epoch": state["best_epoch"], "best_val_loss": state["best_val"],
               "epochs_run": len(hist), "stopped_early": state["bad_epochs"] >= cfg.patience,
               "best": best, "config": _plain(cfg), "parameters": count_parameters(model), "device": str(device),
               "precision": "bf16" if amp else "fp32",
               "seconds": float(hist["seconds"].sum()) if len(hist) else 0.0}
    write_json(summary, out / "summary.json")
    loss_curve(hist, out / "loss.png", cfg.kind)
    return summary


def _fingerprint(cfg: TrainConfig, train_samples, val_samples, bf16: bool = False) -> str:
    """What a checkpoint was trained on: the settings that change the result and a digest of the
    samples (shapes and sums; cheap, and different data gives different sums). A ``last.pt`` with
    another fingerprint (new splits, new preprocessing, other settings) is not resumed."""
    import hashlib
    import json

    settings = {k: v for k, v in _plain(cfg).items() if k not in (*SCHEDULING_KEYS, "max_epoch_seconds")}
    for key, default in (("modality_dropout", 0.0), ("loss", "dice")):  # added later: at their defaults
        if settings[key] == default:  # earlier checkpoints still resume
            del settings[key]
    if settings["lesion_oversampling_by"] == "lesion" or not settings["lesion_oversampling"]:
        del settings["lesion_oversampling_by"]  # added later: earlier checkpoints drew by lesion
    settings["augment"] = {k: v for k, v in settings["augment"].items() if not (k in NON_AFFINE_AUGMENT and not v)}
    settings["precision"] = "bf16" if bf16 else "fp32"  # what ran, not "auto"
    settings["data_layout"] = "crops/3"  # a fresh crop affine per window (checkpoints of patch-level training differ)
    h = hashlib.sha256(json.dumps(settings, sort_keys=True, default=str).encode())
    for samples in (train_samples, val_samples):
        for pair in samples:
            for a in pair:
                a = np.asarray(a)
                h.update(f"{a.shape}:{float(np.sum(a, dtype=np.float64)):.6e};".encode())
    return h.hexdigest()


def _plain(cfg: TrainConfig) -> dict:
    d = asdict(cfg)
    d["class_names"] = list(cfg.class_names)
    d["spacing_xyz"] = list(cfg.spacing_xyz)
    return d


def load_model(path, device="cpu") -> tuple[ModifiedUNet3D, dict]:
    """Model and its training config from a ``best.pt`` (weights only: nothing is executed)."""
    ck = torch.load(path, map_location=device, weights_only=True)
    c = dict(ck["config"])
    cfg = TrainConfig(**{**c, "class_names": tuple(c["class_names"]),
                         "spacing_xyz": tuple(c.get("spacing_xyz", (2, 1, 1)))})
    model = build_model(cfg)
    model.load_state_dict(ck["model"])
    return model.to(device).eval(), c


def loss_curve(hist: pd.DataFrame, path, title: str):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(1, 2, figsize=(10, 3.8))
    if len(hist):
        ax[0].plot(hist["epoch"], hist["train_loss"], label="train")
        ax[0].plot(hist["epoch"], hist["val_loss"], label="validation")
        for c in [c for c in hist.columns if c.startswith("val_dice_")]:
            ax[1].plot(hist["epoch"], hist[c], label=c[len("val_dice_"):])
    ax[0].set(xlabel="epoch", ylabel="Dice loss", title=f"{title} model: loss")
    ax[1].set(xlabel="epoch", ylabel="Dice", ylim=(0, 1), title="validation Dice (threshold 0.5)")
    for a in ax:
        a.legend(fontsize=8)
        a.grid(alpha=0.3)
    save_figure(fig, path)
