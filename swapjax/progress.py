"""The progress line a study prints each round, and its time estimate."""

from __future__ import annotations

import statistics

import numpy as np

from swapjax.config import Config


def swap_progress(config: Config, rnd: int, metrics, round_s: float, eta_s: str) -> str:
  acc = lambda k: float(np.nanmean(metrics[k]))
  return (
    f"round {rnd}/{config.study.rounds}  AtoB test {acc('AtoB/test_acc'):.3f} "
    f"(unseen {acc('AtoB/test_unseen_acc'):.3f})  BtoA test {acc('BtoA/test_acc'):.3f} "
    f"(unseen {acc('BtoA/test_unseen_acc'):.3f})  moved {int(np.sum(metrics['swap/moved']))}  "
    f"{round_s:.2f} s/round  {eta_s}"
  )


def single_progress(config: Config, rnd: int, metrics, round_s: float, eta_s: str) -> str:
  fit = int((metrics["fit_epoch"] > 0).sum())
  test = metrics["test/acc"]

  def mean(key, digits=3):  # "-" where nothing is measured (no validation split, no test)
    values = np.asarray(metrics[key], np.float64)
    return f"{np.nanmean(values):.{digits}f}" if np.isfinite(values).any() else "-"

  return (
    f"epoch {rnd}/{config.study.rounds}  train acc {mean('train/acc')} "
    f"loss {mean('train/loss', 4)}  val acc {mean('val/acc')}"
    f"  test acc {mean('test/acc')}  fit {fit}/{len(test)}  {round_s:.2f} s/epoch  "
    f"{eta_s}"
  )


PROGRESS = {"swap": swap_progress, "epochs": single_progress}  # per config.STUDY_KINDS


def progress_line(config: Config, rnd: int, metrics_list, round_s: float, eta_s: str) -> str:
  """One line for the whole study (every program's runs)."""
  metrics = {
    k: np.concatenate([np.asarray(m[k], np.float64).reshape(-1) for m in metrics_list])
    for k in metrics_list[0]
  }
  return PROGRESS[config.study.kind](config, rnd, metrics, round_s, eta_s)


TRAIN_ACC = ("train/acc", "/train_acc")  # metric names ending so: a training accuracy


def train_acc(metrics) -> np.ndarray:
  """Each run's lowest training accuracy over its members this round (R,)."""
  keys = [k for k in metrics if k.endswith(TRAIN_ACC)]
  return np.min([np.asarray(metrics[k], np.float64) for k in keys], axis=0)


def round_acc(results):
  """(training accuracy, still training) of every run this round, over all programs."""
  acc = np.concatenate([train_acc(m) for _, m in results])
  active = [m["active"] if "active" in m else np.ones(len(b.runs_table), bool) for b, m in results]
  return acc, np.concatenate(active)


def duration(seconds: float) -> str:
  """`11 h 29 min`, `33 min 12 s` or `22 s`, as a person reads a wait."""
  if round(seconds / 60) >= 60:
    hours, minutes = divmod(round(seconds / 60), 60)
    return f"{hours} h {minutes} min"
  if round(seconds) >= 60:
    minutes, rest = divmod(round(seconds), 60)
    return f"{minutes} min {rest} s"
  return f"{seconds:.0f} s"


ETA_ROUNDS = 5  # the rounds whose pace and accuracies the ETA reads


def eta(config: Config, round_times, rnd: int, acc_history) -> str:
  """`ETA <= budget`: the rounds left at the recent median pace, an upper bound when runs stop
  early; with early stopping, also an estimate: each training run's accuracy extrapolated
  linearly (over the last ETA_ROUNDS rounds, `acc_history`'s last) to `fit_target`, the
  slowest run deciding."""
  per_round = statistics.median(round_times[-ETA_ROUNDS:])
  left = config.study.rounds - rnd - 1
  if not config.study.early_stop:
    return f"ETA {duration(per_round * left)}"
  text = f"ETA <= {duration(per_round * left)}"
  if len(acc_history) < 3 or not left:
    return text
  recent = acc_history[-ETA_ROUNDS:]
  acc, active = np.stack([a for a, _ in recent]), recent[-1][1].astype(bool)
  slope = (acc[-1] - acc[0]) / (len(recent) - 1)
  need = np.where(
    active, (config.study.fit_target - acc[-1]) / np.where(slope > 0, slope, np.nan), 0
  )
  if not active.any() or not np.isfinite(need).all():
    return text
  # A run at the target this round is still marked active (the round's input): 0 rounds left.
  rounds = min(left, max(0, int(np.ceil(need.max()))))
  return f"{text} (fit in ~{duration(per_round * rounds)} at the current pace)"
