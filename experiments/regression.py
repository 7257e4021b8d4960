"""Linear and cubic regression with noise (seeds/002): fitted coefficients against true ones.

Command:
  python -m swapjax.main --experiment=regression
Question: how far are the fitted coefficients from the true ones, and how does the error grow
  with the noise (the report: more noise, more error)?
From the report: d = 3x + 2 and d = -6x + 3 (linear); d = -0.4x^3 + 1.6x^2 - 2.8x + 1 and
  d = 2.1x^3 - 1.2x^2 - 4.8x + 2 (cubic); noise added to the targets at several levels. The
  report's TensorFlow 1 settings are not shown.
Chosen: x uniform in [-1, 1], 100 training and 100 test points; the model is Dense(1) on
  (x) or (x, x^2, x^3), so its kernel and bias are the coefficients (`param/*` in the rows);
  Gaussian noise of standard deviation `target_noise` in {0, 0.1, 0.3, 1.0} on the training
  targets, drawn per seed; mean squared error; SGD learning rate 0.1, batch 10, 300 epochs; the
  test targets are noise-free, so `test/loss` is the fitted function's error. 10 seeds.
Groups: `line_a`, `line_b`, `cubic_a`, `cubic_b`, each x `target_noise`.
Measured 2026-11-30 on a 2-core AMD EPYC (jax 0.10.2; the command above, 160 runs, 71 s, mostly
  per-round bookkeeping of 300 epochs): without noise every coefficient within 0.002 of the truth;
  the spread over seeds grows with the noise (cubic_a's x^3 coefficient -0.40085 +- 0.00043 at 0,
  -0.37 +- 0.08 at 0.1, -0.31 +- 0.25 at 0.3, -0.09 +- 0.82 at 1.0; line_a's slope 3.010 +- 0.014 at
  0.1, 3.10 +- 0.14 at 1.0), and so does the test error, the mean squared error against the
  noise-free function (line_a 0.00032 / 0.0029 / 0.032, cubic_a 0.00069 / 0.0062 / 0.069 at noise
  0.1 / 0.3 / 1.0; the report: more noise, more error).
"""

from swapjax.config import Config
from swapjax.layers import Dense

TRUE_COEFFICIENTS = {  # Dense kernel (x, x^2, x^3) and bias
  "line_a": ((3.0,), 2.0),
  "line_b": ((-6.0,), 3.0),
  "cubic_a": ((-2.8, 1.6, -0.4), 1.0),
  "cubic_b": ((-4.8, -1.2, 2.1), 2.0),
}
VARIANTS = {name: {"dataset": name} for name in TRUE_COEFFICIENTS}
# For the report's parameter table: {group: {parameter: true value}}.
TRUE_PARAMETERS = {
  name: {"Dense_0/bias/0": bias, **{f"Dense_0/kernel/{i}": c for i, c in enumerate(kernel)}}
  for name, (kernel, bias) in TRUE_COEFFICIENTS.items()
}


def get_config() -> Config:
  return Config(
    description=__doc__.splitlines()[0],
    study="epochs",
    report="curves",
    dataset="line_a",
    pool_size=100,
    holdout_size=100,
    layers=(Dense(1),),
    task="regression",
    optimizer="sgd",
    learning_rate=(0.1,),
    batch_size=10,
    validation_split=0.0,
    rounds=300,
    num_seeds=10,
    target_noise=(0.0, 0.1, 0.3, 1.0),
    variants=VARIANTS,
    log_params=True,
    early_stop=False,
    test_every=10,
  )
