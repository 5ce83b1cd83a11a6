"""Run identity: every schema field decides its place in it, and today's run ids never move.

The pinned ids below were printed by the code of commit 363d4e6 (before the schemas declared their
identity field by field), for configs composed from conf/ exactly as here: records written before the
change must keep being found under the same folders.
"""

from __future__ import annotations

import dataclasses
import typing

import pytest
from omegaconf import OmegaConf

from sparsebench.configure import validate
from sparsebench.data.tasks import SEQUENCES
from sparsebench.identity import config_hash, result_relevant, run_id
from sparsebench.models import MODELS
from sparsebench.regularizers import REGULARIZERS
from sparsebench.schemas import IDENTITY, RunConfig, part
from tests.conftest import MNIST, compose_config

DECISIONS = {"part", "neutral", "part_unless"}


def undecided_fields(schema: type, prefix: str = "") -> list[str]:
    """Dotted names of the fields under ``schema`` that declare no identity decision (skipping what
    sits below a neutral field: none of it counts)."""
    hints = typing.get_type_hints(schema)
    missing = []
    for f in dataclasses.fields(schema):
        name = f"{prefix}{f.name}"
        decision = f.metadata.get(IDENTITY)
        if decision not in DECISIONS:
            missing.append(name)
            continue
        if decision == "neutral":
            continue
        nested = f.metadata.get("schema") or hints.get(f.name)
        if dataclasses.is_dataclass(nested):
            missing += undecided_fields(nested, f"{name}.")
    return missing


def every_schema() -> dict[str, type]:
    schemas = {"run": RunConfig}
    schemas.update({f"model {name}": model.Config for name, model in MODELS.items()})
    schemas.update({f"regularizer {name}": reg.Config for name, reg in REGULARIZERS.items()})
    schemas.update({f"continual {name}": schema for name, schema in SEQUENCES.items()})
    return schemas


@pytest.mark.parametrize("label", list(every_schema()))
def test_every_schema_field_says_whether_it_is_part_of_the_run_identity(label):
    schema = every_schema()[label]
    assert undecided_fields(schema) == [], (
        f"{label}: declare each field with part(...), neutral(..., why=...) or part_unless(...) "
        "(sparsebench.schemas): does it change a run's numbers?")


def test_a_field_added_without_a_decision_is_caught():
    @dataclasses.dataclass
    class Grown(RunConfig):
        foo: int = 0  # what a contributor might add

    @dataclasses.dataclass
    class Decided(RunConfig):
        foo: int = part(0)

    assert undecided_fields(Grown) == ["foo"]
    assert undecided_fields(Decided) == []


def test_plugin_schemas_are_walked_too():
    # A regularizer field without a decision, found only by looking inside the plug-in's schema.
    @dataclasses.dataclass
    class Careless(REGULARIZERS["l1"].Config):
        extra: float = 1.0

    assert undecided_fields(Careless) == ["extra"]


# Content digests of the embedded subset and of MNIST (sparsebench.data.identity), fixed by the data.
EMBEDDED, MNIST_DIGEST = "a0c69849be965bb4", "11de40ec28a7c150"
# The claim experiments hold out a validation split and measure the early-stopping epoch since their
# records were pinned (new runs, new ids, on purpose): these overrides compose the configs as they were then.
BEFORE_VALIDATION = ["dataset.val_size=0", "eval.early_stop=false"]
PINNED = {  # label -> (overrides, data digest, experiment folder, run id printed by commit 363d4e6)
    "default embedded run": ([], EMBEDDED, "default", "7c84522aa9e5"),
    "dropout MLP on MNIST": (["dataset=mnist", "model=mlp", "regularizer=dropout", "seed=3"], MNIST_DIGEST,
                             "default", "40d8d1ce31ca"),
    "k-winners paper net": (["experiment=kwinners_sparse_cnn2", "seed=1", *BEFORE_VALIDATION], MNIST_DIGEST,
                            "kwinners_sparse_cnn2", "28b0e1570b6a"),
    "task sequence": (["continual=permuted", "continual.tasks=3", "regularizer=kwinners"], EMBEDDED, "default",
                      "7f86143223be"),
    "DropConnect paper arm": (["experiment=dropconnect_paper_mlp", "regularizer=dropconnect_paper",
                               *BEFORE_VALIDATION], MNIST_DIGEST, "dropconnect_paper_mlp", "e877a234a5b1"),
}


@pytest.mark.parametrize("label", list(PINNED))
def test_run_ids_are_those_of_the_code_before_the_redesign(label, tmp_path):
    overrides, digest, experiment, expected = PINNED[label]
    # The data's root is where the files are, not part of the identity: any folder will do here.
    cfg = validate(compose_config([*overrides, f"dataset.root={MNIST}", f"results_dir={tmp_path}"]))
    assert cfg.name == experiment
    assert run_id(cfg, digest) == expected


def test_neutral_settings_leave_the_id_alone_and_part_settings_move_it(tmp_path):
    base = validate(compose_config([f"results_dir={tmp_path}"]))
    same = validate(compose_config([f"results_dir={tmp_path / 'other'}", "device=cpu", "threads=1", "progress=off",
                                    "train.compile=true", "eval.batch_size=64", "name=elsewhere",
                                    "train.convergence.window=5", "objective=train/loss", "dataset.download=false"]))
    assert run_id(same, "d") == run_id(base, "d")
    for change in ("seed=1", "train.lr=0.02", "regularizer=dropout", "model.hidden=[32]", "eval.noise_seed=7",
                   "dataset.val_size=100", "continual=permuted"):
        moved = validate(compose_config([f"results_dir={tmp_path}", change]))
        assert run_id(moved, "d") != run_id(base, "d"), change
    assert run_id(base, "other data") != run_id(base, "d")


def test_settings_added_later_move_the_id_only_away_from_their_default(tmp_path):
    """part_unless fields (eval.near_zero_rms, prune.compare, continual.changed_threshold_lr_steps): their
    default, written out or not, is the id of before; any other value is another run."""
    for base, default, other in (
        ([], "eval.near_zero_rms=[0.01,0.1]", "eval.near_zero_rms=[0.2]"),
        (["prune=default"], "prune.compare=[]", "prune.compare=[random]"),
        (["continual=permuted"], "continual.changed_threshold_lr_steps=null", "continual.changed_threshold_lr_steps=10"),
    ):
        plain = run_id(validate(compose_config([f"results_dir={tmp_path}", *base])), "d")
        assert run_id(validate(compose_config([f"results_dir={tmp_path}", *base, default])), "d") == plain, default
        assert run_id(validate(compose_config([f"results_dir={tmp_path}", *base, other])), "d") != plain, other
    # continual.seed null (tasks from the run's seed) is not the fixed seed 42
    fixed = validate(compose_config([f"results_dir={tmp_path}", "continual=permuted"]))
    drawn = validate(compose_config([f"results_dir={tmp_path}", "continual=permuted", "continual.seed=null"]))
    assert run_id(drawn, "d") != run_id(fixed, "d")


def test_a_list_default_of_a_later_setting_is_a_copy_per_config():
    from sparsebench.schemas import EvalConfig, PruneConfig

    first, second = EvalConfig(), EvalConfig()
    first.near_zero_rms.append(0.5)
    assert second.near_zero_rms == [0.01, 0.1] and EvalConfig().near_zero_rms == [0.01, 0.1]
    assert PruneConfig().compare == [] and PruneConfig().compare is not PruneConfig().compare


def test_the_id_of_a_record_tree_equals_that_of_its_typed_config(tmp_path):
    """A record holds its config as a plain tree (config.yaml, result.json): the same id from it."""
    cfg = validate(compose_config([f"results_dir={tmp_path}", "regularizer=kwinners", "continual=split"]))
    tree = OmegaConf.to_container(OmegaConf.structured(cfg))
    assert result_relevant(tree, "d") == result_relevant(cfg, "d")
    assert config_hash(result_relevant(tree, "d")) == run_id(cfg, "d")


def test_what_the_identity_hashes_is_written_out_by_hand():
    # The hash is sha256 over sorted, compact JSON, first 12 hex digits.
    import hashlib

    tree = {"b": [1, 2], "a": {"y": None, "x": 0.5}}
    text = '{"a":{"x":0.5,"y":null},"b":[1,2]}'
    assert config_hash(tree) == hashlib.sha256(text.encode()).hexdigest()[:12]


@pytest.mark.parametrize("overrides", [["regularizer=kwinners", "continual=split"], ["experiment=kwinners_sparse_cnn2"],
                                       ["experiment=mlp_regularizers", "regularizer=l1"], ["experiment=sparseout_q"]])
def test_config_tree_is_asdict_with_new_containers(overrides, tmp_path):
    from sparsebench.schemas import config_tree

    def typed(value):  # each leaf with its type: 1 and 1.0, a list and a tuple told apart
        if isinstance(value, dict):
            return {key: typed(item) for key, item in value.items()}
        if isinstance(value, (list, tuple)):
            return type(value).__name__, [typed(item) for item in value]
        return type(value).__name__, value

    cfg = validate(compose_config([f"results_dir={tmp_path}", *overrides]))
    tree = config_tree(cfg)
    assert typed(tree) == typed(dataclasses.asdict(cfg))
    before = dataclasses.asdict(cfg)
    stack = [tree]
    while stack:  # empty every container of the tree: the config must not notice
        node = stack.pop()
        stack.extend(v for v in (node.values() if isinstance(node, dict) else node) if isinstance(v, (dict, list)))
        node.clear()
    assert dataclasses.asdict(cfg) == before
