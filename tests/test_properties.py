"""Property tests (hypothesis): the swap exchange, the move counter, the schedule parser and the
`--set` / config.json round trips. Array shapes are fixed (N, K_MAX) so that jax compiles each
op once and hypothesis only varies the contents."""

import json
import string
import typing

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from swapjax import config as C
from swapjax import registry, swap
from swapjax.config import keys

N, K_MAX = 16, 8
JAX_SETTINGS = settings(max_examples=60, deadline=None)
PURE_SETTINGS = settings(max_examples=150, deadline=None)


# ------------------------------------------------------------------ the exchange
K_VALUES = st.integers(0, K_MAX)


@st.composite
def exchange_cases(draw, k=K_VALUES):
  ids = draw(st.permutations(range(2 * N)))
  return (
    draw(st.integers(0, 2**31 - 1)),
    np.asarray(ids[:N], np.int32),
    np.asarray(ids[N:], np.int32),
    np.asarray(draw(st.lists(st.booleans(), min_size=N, max_size=N))),
    np.asarray(draw(st.lists(st.booleans(), min_size=N, max_size=N))),
    draw(k),
  )


def _exchange(seed, a, b, a_miss, b_correct, k):
  out = swap.exchange(
    jax.random.key(seed), jnp.asarray(a), jnp.asarray(b), jnp.asarray(a_miss),
    jnp.asarray(b_correct), jnp.asarray(k, jnp.int32), K_MAX,
  )  # fmt: skip
  return tuple(np.asarray(x) for x in out)


@JAX_SETTINGS
@given(exchange_cases())
def test_exchange_conserves_partitions_and_counts(case):
  """Guards: a swap that duplicates or loses an id (writing one side only, wrong gather index),
  a `moved` other than min(k, #a_miss, #b_correct) (a dropped minimum, counting the wrong mask),
  and selections that touch ineligible positions (eligibility mask ignored or inverted)."""
  seed, a, b, a_miss, b_correct, k = case
  new_a, new_b, moved, ids_2xK, valid_K = _exchange(*case)
  expected = min(k, int(a_miss.sum()), int(b_correct.sum()))
  assert int(moved) == expected
  # Conservation and partition: the same ids, each on exactly one side.
  assert sorted(np.concatenate([new_a, new_b])) == sorted(np.concatenate([a, b]))
  assert not set(new_a.tolist()) & set(new_b.tolist())
  # Exactly `moved` positions change in each half, and only eligible ones.
  changed_a, changed_b = new_a != a, new_b != b
  assert changed_a.sum() == expected and changed_b.sum() == expected
  assert not (changed_a & ~a_miss).any()
  assert not (changed_b & ~b_correct).any()
  # What left A is what arrived in B and the reverse; the reported ids are those.
  assert set(a[changed_a].tolist()) == set(new_b[changed_b].tolist())
  assert set(b[changed_b].tolist()) == set(new_a[changed_a].tolist())
  assert valid_K.tolist() == [i < expected for i in range(K_MAX)]
  assert set(ids_2xK[0][valid_K].tolist()) == set(a[changed_a].tolist())
  assert set(ids_2xK[1][valid_K].tolist()) == set(b[changed_b].tolist())


@JAX_SETTINGS
@given(exchange_cases())
def test_exchange_is_deterministic_for_a_key(case):
  """Guards: randomness not derived from the key alone (a global RNG, numpy inside the swap),
  which would make a resumed run swap differently from an uninterrupted one."""
  for x, y in zip(_exchange(*case), _exchange(*case), strict=True):
    np.testing.assert_array_equal(x, y)


@JAX_SETTINGS
@given(exchange_cases(k=st.just(0)))
def test_exchange_k_zero_is_identity(case):
  """Guards: a swap that moves pairs when the rule asks for none (a `<=` for `<` in the valid
  mask, `moved` taken from the eligible counts alone)."""
  _, a, b, *_ = case
  new_a, new_b, moved, _, valid_K = _exchange(*case)
  np.testing.assert_array_equal(new_a, a)
  np.testing.assert_array_equal(new_b, b)
  assert int(moved) == 0 and not valid_K.any()


@JAX_SETTINGS
@given(exchange_cases())
def test_count_moves_adds_two_per_pair(case):
  """Guards: a move counter that counts one side only, counts the padding slots past `moved`, or
  adds at the wrong ids."""
  _, a, b, *_ = case
  new_a, new_b, moved, ids_2xK, valid_K = _exchange(*case)
  counts_P = np.asarray(
    swap.count_moves(jnp.zeros(2 * N, jnp.int32), jnp.asarray(ids_2xK), jnp.asarray(valid_K))
  )
  assert counts_P.sum() == 2 * int(moved)
  switched = np.concatenate([a[new_a != a], b[new_b != b]])
  expected_P = np.zeros(2 * N, np.int32)
  expected_P[switched] = 1
  np.testing.assert_array_equal(counts_P, expected_P)


# ------------------------------------------------------------------ the schedule parser
NAMES = st.text(string.ascii_letters + string.digits + "_", min_size=1, max_size=8)
ROWS = st.lists(st.tuples(st.integers(0, 10**6), st.integers(0, 10**4)), min_size=1, max_size=5)


def _schedules_text(tables):
  return ";".join(
    f"{name}={','.join(f'{t}:{k}' for t, k in rows)}" for name, rows in tables.items()
  )


@PURE_SETTINGS
@given(st.dictionaries(NAMES, ROWS, min_size=1, max_size=4))
def test_schedules_round_trip_sorted_descending(tables):
  """Guards: a parser that sorts ascending (the rule would then fire its smallest k first), drops
  or merges rows, or mixes up threshold and k; and printed tables that do not re-parse."""
  parsed = C.parse_schedules(_schedules_text(tables))
  assert parsed == {name: tuple(sorted(rows, reverse=True)) for name, rows in tables.items()}
  assert C.parse_schedules(_schedules_text(parsed)) == parsed
  spaced = " ; ".join(f" {n} = " + " , ".join(f"{t}:{k}" for t, k in r) for n, r in parsed.items())
  assert C.parse_schedules(spaced + ";") == parsed


@PURE_SETTINGS
@given(st.text(alphabet=st.characters(blacklist_categories=("Cs", "Cc", "Zl", "Zp"))))
def test_bad_schedules_raise_one_line_config_errors(text):
  """Guards: malformed `swap_schedules` escaping as an IndexError/ValueError/TypeError traceback
  instead of the one-line ConfigError that flag parsing shows the user. (Text with line breaks is
  left out: the message quotes the offending entry, line breaks included.)"""
  try:
    tables = C.parse_schedules(text)
  except C.ConfigError as e:
    assert len(str(e).splitlines()) == 1
  else:
    for rows in tables.values():
      assert rows and all(t >= 0 and k >= 0 for t, k in rows)
      assert list(rows) == sorted(rows, reverse=True)


@pytest.mark.parametrize(
  "text",
  [
    "x",
    "=0:1",
    "x=",
    "x=1",
    "x=1:",
    "x=:1",
    "x=-1:1",
    "x=1:-1",
    "x=a:1",
    "x=1:1.5",
    "x=1:2:3",
    "x=y=1:2",
  ],
)
def test_bad_schedule_examples(text):
  """Guards: any of these forms accepted (a dropped colon check, negative counts allowed)."""
  with pytest.raises(C.ConfigError, match="swap_schedules"):
    C.parse_schedules(text)


# ------------------------------------------------------------------ overrides and config.json
def _typed(value) -> str:
  """A value as a user types it after `--set key=`."""
  if isinstance(value, tuple):
    return ",".join(_typed(v) for v in value)
  if isinstance(value, bool):
    return "true" if value else "false"
  return repr(value) if isinstance(value, float) else str(value)


@pytest.mark.parametrize("name", [None, *registry.names()])
def test_every_field_accepts_its_printed_value(name):
  """Guards: a field whose own value cannot be typed back with `--set` (a tuple parsed as one
  string, bools read as truthy strings, ints as floats, a type hint the parser does not know)."""
  cfg = C.Config() if name is None else registry.get_config(name)
  types = C.field_types()
  settable = {k: v for k, v in cfg.flat().items() if k not in keys.INTERNAL}
  for name, value in settable.items():
    parsed = C.parse_value(name, _typed(value))
    assert parsed == value, name
    assert type(parsed) is type(value), name
    if typing.get_origin(types[name]) is tuple:
      assert all(type(p) is typing.get_args(types[name])[0] for p in parsed), name
  overrides = [f"{name}={_typed(value)}" for name, value in settable.items()]
  assert C.apply_overrides(C.Config(), overrides) == cfg


WORDS = st.text(
  alphabet=st.characters(
    blacklist_categories=("Cs", "Cc", "Zs", "Zl", "Zp"), blacklist_characters=","
  ),
  min_size=1,
  max_size=10,
)


def _values(kind):
  if typing.get_origin(kind) is tuple:
    return st.lists(_values(typing.get_args(kind)[0]), min_size=1, max_size=4).map(tuple)
  return {
    bool: st.booleans(),
    int: st.integers(-(10**12), 10**12),
    float: st.floats(allow_nan=False),
    str: WORDS,
  }[kind]


CONFIGS = st.fixed_dictionaries({k: _values(t) for k, t in C.field_types().items()}).map(
  lambda d: C.Config(**d)
)


@PURE_SETTINGS
@given(CONFIGS)
def test_any_typed_value_parses_back(cfg):
  """Guards: `--set` parsing that loses precision (floats through a format), mangles negative or
  big ints, or splits/strips tuple items wrongly."""
  for key, value in cfg.flat().items():
    if key in keys.INTERNAL:  # set by the engine; `--set` refuses it (test_sections.py)
      continue
    parsed = C.parse_value(key, _typed(value))
    assert parsed == value, key
    assert type(parsed) is type(value), key


@PURE_SETTINGS
@given(CONFIGS)
def test_config_json_round_trip(cfg):
  """Guards: config.json that cannot rebuild the run's config (tuples left as lists, so the
  resumed config differs from the one the run started with; fields dropped or renamed)."""
  data = json.loads(json.dumps(cfg.to_json()))
  assert set(data) == set(C.field_types())
  rebuilt = C.from_json({**data, "a_field_from_a_newer_version": 1})
  assert rebuilt == cfg
  assert all(type(rebuilt.flat()[k]) is type(v) for k, v in cfg.flat().items())
