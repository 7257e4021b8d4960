"""Report 000's code as it ran: one shared network, and a swap that copies B's sample into A.

Command:
  python -m swapjax.main --experiment=swap_cifar10_as_ran --data_dir=../shared/data --workdir=W
Question: what did the report's code measure? Its two models are one network (`model_AtoB =
  model_BtoA = model`), and its swap `x_a[i], x_b[j] = x_b[j], x_a[i]` on NumPy rows is a
  one-way copy: the right side are views, so B's row is written into A and then A's row, which
  now holds B's data, back into B. A's miss becomes a duplicate of B's correct sample, A's own
  sample leaves the study, and B never changes.
Protocol (as ran): swap_cifar10_shared (the first 10,000 CIFAR-10 training images in random
  halves of 5,000, the report's CNN with dropout, Adam 0.001, batch 32, one epoch per round,
  Keras validation_split=0.1, 50 rounds; B judged after training on A, A after training on B)
  with exchange=copy and no warm-up (the report swapped from round 1); conditions {none, one,
  schedule} x 10 seeds. `swap/duplicates` counts A's positions that hold a copy of a B sample
  (membership.npz: `np.isin(a_idx, b_idx)`).
What the report says: without swaps and with one swap per round, accuracy "around 96-97%" near
  round 50; with 100 swaps per round, A above 99.8% while B stays at 96-97%. Those accuracies
  are measured on halves the shared network trained on: accuracy on B (`AtoB/test_acc`,
  `BtoA/train_acc`) is on B's training data of every round, and accuracy on A (`BtoA/test_acc`,
  `AtoB/train_acc`) on data it trained on that round, more and more of it copies of B's samples.
  Compare them with `test_unseen` and `holdout`, and with swap_cifar10 (the study as meant:
  independent models, a real exchange) and swap_cifar10_shared (shared model, real exchange):
  `python -m swapjax.report W_AS_RAN W_MEANT W_SHARED`.
Runtime: a GPU job like swap_cifar10 (30 runs x 50 rounds; a run trains its one network on both
  halves, the work of swap_cifar10's pair). On 2 CPU cores (Intel Xeon, 2026-12-04) with
  `--set num_seeds=2` (6 runs): compile 23 s, 54 s per round, 45 min for the 50 rounds.
Result (that run, round 50, mean of 2 seeds): on B / on A 0.959 / 0.963 without swaps, 0.957 /
  0.970 with one per round, and B 0.961 / A 0.9994 under the schedule, with A holding 1,789-1,888
  copies of B's samples: the report's numbers, all on the network's own training halves; on
  CIFAR-10 test images the same networks reach 0.63-0.66 (docs/results.md).
"""

from swapjax.experiments import swap_cifar10_shared


def get_config():
  return swap_cifar10_shared.get_config().replace(
    description=__doc__.splitlines()[0],
    exchange="copy",
    warmup=(0,),
  )
