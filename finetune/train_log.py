"""What a run reports: ``losses.jsonl`` (kept up to the resumed step), tensorboard scalars, the progress
bar with samples/s, and ``loss.png`` at the end. Only the main process writes."""

from __future__ import annotations

import json
import time
from pathlib import Path

from finetune.config import TrainConfig


class TrainLog:
    def __init__(self, out: Path, cfg: TrainConfig, main: bool, start_step: int, total: int, global_batch: int):
        self.main, self.cfg, self.global_batch = main, cfg, global_batch
        self.path = out / "losses.jsonl"
        self.history: list[dict] = []
        self.writer = None
        if main and cfg.tensorboard:
            from torch.utils.tensorboard import SummaryWriter

            self.writer = SummaryWriter(str(out / "tensorboard"))
        if main and self.path.exists():  # keep the trajectory up to the resumed step
            self.history = [r for r in map(json.loads, self.path.read_text().splitlines()) if r["step"] <= start_step]
            self.path.write_text("".join(json.dumps(r) + "\n" for r in self.history))
        from tqdm import tqdm

        self.bar = tqdm(total=total, initial=start_step, desc="finetune", unit="step",
                        disable=not (main and cfg.progress), dynamic_ncols=True)
        self._window_t, self._window_samples, self.sps = time.perf_counter(), 0, 0.0

    def step(self, step: int, loss: float, lr: float, total: int, now: float) -> None:
        self._window_samples += self.global_batch
        if now - self._window_t > 2.0 or step == total:
            self.sps = self._window_samples / (now - self._window_t)
            self._window_t, self._window_samples = now, 0
        if not self.main:
            return
        rec = {"step": step, "loss": loss, "lr": lr}
        self.history.append(rec)
        with self.path.open("a") as f:
            f.write(json.dumps(rec) + "\n")
        if self.writer is not None and (step % self.cfg.log_every == 0 or step == total):
            self.scalars("train", {"loss": loss, "lr": lr, "samples_per_second": self.sps}, step)
        self.bar.update(1)
        self.bar.set_postfix(loss=f"{loss:.4f}", lr=f"{lr:.2e}", sps=f"{self.sps:.0f}")

    def scalars(self, prefix: str, metrics: dict[str, float], step: int) -> None:
        if self.writer is not None:
            for k, v in metrics.items():
                self.writer.add_scalar(f"{prefix}/{k}", v, step)

    @property
    def losses(self) -> list[float]:
        return [r["loss"] for r in self.history]

    def close(self) -> None:
        self.bar.close()

    def finish(self, out: Path) -> None:
        if self.writer is not None:
            self.writer.close()
        plot_losses(self.history, out / "loss.png")


def plot_losses(history: list[dict], path: Path) -> None:
    if not history:
        return
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    steps = [r["step"] for r in history]
    losses = [r["loss"] for r in history]
    fig, ax = plt.subplots(figsize=(6, 3.5))
    ax.plot(steps, losses, lw=0.6, alpha=0.5, label="loss")
    k = max(1, len(losses) // 50)
    if k > 1:
        smooth = [sum(losses[max(0, i - k):i + 1]) / len(losses[max(0, i - k):i + 1]) for i in range(len(losses))]
        ax.plot(steps, smooth, lw=1.5, label=f"mean of {k}")
    ax.set_yscale("log")
    ax.set_xlabel("step")
    ax.set_ylabel("training loss")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
