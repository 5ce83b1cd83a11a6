"""The catalogue's YAML reader against OmegaConf's structured merge (the reference it replaces for speed) and
against hand-written cases."""

from __future__ import annotations

import dataclasses
import itertools
from importlib import resources
from typing import Any, Optional

import pytest
from omegaconf import OmegaConf

from sparsebench import typed_yaml
from sparsebench.claims.catalogue import Claim
from sparsebench.errors import SparsebenchError


def _typed(value: Any) -> Any:
    """``value`` with each leaf's type beside it: 1 and 1.0 (equal in Python) told apart."""
    if dataclasses.is_dataclass(value):
        return (type(value).__name__, {f.name: _typed(getattr(value, f.name)) for f in dataclasses.fields(value)})
    if isinstance(value, dict):
        return {key: _typed(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_typed(item) for item in value]
    return (type(value).__name__, value)


def test_every_claim_file_reads_as_omegaconf_reads_it():
    files = sorted((f for f in (resources.files("sparsebench.conf") / "claims").iterdir() if f.name.endswith(".yaml")),
                   key=lambda f: f.name)
    assert len(files) >= 15
    for file in files:
        text = file.read_text()
        reference = OmegaConf.to_object(OmegaConf.merge(OmegaConf.structured(Claim), OmegaConf.create(text)))
        assert _typed(typed_yaml.read(Claim, text, file.name)) == _typed(reference), file.name


@dataclasses.dataclass
class Inner:
    rate: float
    tags: list[str] = dataclasses.field(default_factory=list)


@dataclasses.dataclass
class Outer:
    name: str
    count: int
    inner: Inner
    extra: Optional[dict[str, Any]] = None
    flag: bool = False


def test_numbers_as_yaml_1_2_reads_them():
    # YAML 1.1 (PyYAML's safe loader) reads 1e-5 and 2.5e3 as strings; OmegaConf, Hydra and YAML 1.2 as numbers.
    outer = typed_yaml.read(Outer, "name: a\ncount: 3\ninner: {rate: 1e-5}\nextra: {x: 2.5e3, y: 1.0e-2, z: 7}\n", "f")
    assert outer.inner.rate == pytest.approx(0.00001) and type(outer.inner.rate) is float
    assert outer.extra == {"x": 2500.0, "y": 0.01, "z": 7} and type(outer.extra["z"]) is int
    assert typed_yaml.read(Inner, "rate: 2", "f").rate == 2.0 and type(typed_yaml.read(Inner, "rate: 2", "f").rate) is float
    assert typed_yaml.parse("a: 1e5x\nb: '1e-5'\nc: 10", "f") == {"a": "1e5x", "b": "1e-5", "c": 10}


@pytest.mark.parametrize("text, message", [
    ("name: a\ncount: 3\ninner: {rate: 1}\ncolour: red\n", r"^f: colour='red' is not allowed: Outer has no such field; choose among name, count"),
    ("name: a\ninner: {rate: 1}\n", r"^f: count=None is not allowed: is missing and has no default; add it$"),
    ("name: a\ncount: three\ninner: {rate: 1}\n", r"^f: count='three' is not allowed: must be an int$"),
    ("name: a\ncount: 1.5\ninner: {rate: 1}\n", r"^f: count=1.5 is not allowed: must be an int$"),
    ("name: a\ncount: true\ninner: {rate: 1}\n", r"^f: count=True is not allowed: must be an int$"),
    ("name: 5\ncount: 1\ninner: {rate: 1}\n", r"^f: name=5 is not allowed: must be a str \(quote it\)$"),
    ("name: a\ncount: 1\ninner: {rate: 1, tags: [x, 2]}\n", r"^f: inner.tags\[2\]=2 is not allowed: must be a str \(quote"),
    ("name: null\ncount: 1\ninner: {rate: 1}\n", r"^f: name=None is not allowed: must be a str$"),
    ("? [a]\n: 1\n", r"^f: found unhashable key \(line 1, column 3\); fix the file's YAML$"),
    ("name: a\ncount: 1\ninner: {rate: 1, tags: x}\n", r"^f: inner.tags='x' is not allowed: must be a list$"),
    ("name: a\ncount: 1\ninner: [1]\n", r"^f: inner=\[1\] is not allowed: must be a mapping of Inner's fields \(rate, tags\)$"),
    ("name: a\ncount: 1\ninner: {rate: 1}\nflag: yes please\n", r"^f: flag='yes please' is not allowed: must be a bool$"),
    ("name: a\ncount: 1\ncount: 2\ninner: {rate: 1}\n", r"^f: duplicate key 'count' \(line 3, column 1\); fix the file's YAML$"),
    ("- 1\n- 2\n", r"^f: \(the file\)=\[1, 2\] is not allowed: must be a mapping of Outer's fields"),
])
def test_what_does_not_fit_is_refused_in_one_line_naming_it(text, message):
    with pytest.raises(SparsebenchError, match=message) as error:
        typed_yaml.read(Outer, text, "f")
    assert "\n" not in str(error.value)


def test_scalars_are_typed_as_omegaconf_types_them():
    # Every string of up to 4 characters that could be a number, and dates (text for OmegaConf, timestamps
    # for YAML 1.1), against OmegaConf's own reading.
    texts = ["".join(chars) for length in range(1, 5) for chars in itertools.product("01._eE+-", repeat=length)]
    texts += ["2026-12-05", "2026-12-05T10:00:00Z", "1e5", "1.5e-3", "1_000", "0x1f", "0o17", "017", "yes", "off",
              ".inf", "-.Inf", ".nan", "null", "~", "1:30", "12e", "e12"]
    def read(reader, text):
        try:
            return reader(f"a: {text}\n")["a"]
        except Exception:  # noqa: BLE001 - not YAML ("a: -"): both must refuse it
            return "refused", None

    for text in texts:
        ours = read(lambda t: typed_yaml.parse(t, "f"), text)
        reference = read(lambda t: OmegaConf.to_container(OmegaConf.create(t)), text)
        assert type(ours) is type(reference) and (ours == reference or ours != ours), (text, ours, reference)


def test_merge_keys_may_repeat():
    assert typed_yaml.parse("a: &x {b: 1}\nc: {<<: *x, <<: *x, d: 2}\n", "f")["c"] == {"b": 1, "d": 2}


def test_no_tag_is_executed():
    with pytest.raises(SparsebenchError, match=r"^f: could not determine a constructor"):
        typed_yaml.parse("a: !!python/object/apply:os.system ['true']\n", "f")
