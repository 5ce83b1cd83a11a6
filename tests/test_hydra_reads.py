"""Hydra's config files read once per command (sparsebench.hydra_reads, inside every ``hydra_configs()``):
each composition equals what Hydra composes without it, a file is read once however often it is
composed, what one composition's merge changes reaches no other, a folder added to the search path is
read as its own, and Hydra is left as it was."""

from __future__ import annotations

import hydra
from hydra._internal import config_repository
from hydra.core.global_hydra import GlobalHydra
from omegaconf import OmegaConf

from sparsebench.configure import register
from sparsebench.sweep import CONFIG_MODULE, CONFIG_NAME, hydra_configs

COMMANDS = [
    ["experiment=kwinners_home_sparse_cnn2", "profile=paper"],  # an experiment that includes another
    ["experiment=mlp_regularizers", "regularizer=dropout", "profile=standard", "train.lr=0.1"],
    ["experiment=continual_paper", "profile=paper"],
    ["experiment=mlp_regularizers", "regularizer=l1", "profile=map"],
    ["experiment=kwinners_home_sparse_cnn2", "profile=paper"],  # again, after the others
]


def composed(overrides: list[str]) -> dict:
    return OmegaConf.to_container(hydra.compose(config_name=CONFIG_NAME, overrides=overrides,
                                                return_hydra_config=True), resolve=False)


def hydra_alone(overrides: list[str]) -> dict:
    """The reference: Hydra's Compose API initialised by hand, every file read by Hydra itself."""
    register()
    GlobalHydra.instance().clear()
    try:
        with hydra.initialize_config_module(config_module=CONFIG_MODULE, version_base="1.3"):
            return composed(overrides)
    finally:
        GlobalHydra.instance().clear()


def test_every_composition_is_hydras_own_whatever_was_composed_before():
    expected = [hydra_alone(command) for command in COMMANDS]
    with hydra_configs():
        got = [composed(command) for command in COMMANDS]
    for command, want, have in zip(COMMANDS, expected, got):
        assert have == want, command
    assert got[1]["train"]["lr"] == 0.1 and got[1]["regularizer"]["name"] == "dropout"
    assert got[0]["model"]["name"] != got[1]["model"]["name"]


def test_a_file_is_read_once_however_often_it_is_composed(monkeypatch):
    reads: list[str] = []  # every read of a file (the ConfigStore's schemas are Hydra's to copy; a null option no file)
    read = config_repository.ConfigRepository.load_config

    def counted(self, config_path):
        source = self._find_object_source(config_path=config_path, object_type=config_repository.ObjectType.CONFIG)
        if source is not None and type(source).__name__ != "StructuredConfigSource":
            reads.append(config_path)
        return read(self, config_path)

    monkeypatch.setattr(config_repository.ConfigRepository, "load_config", counted)
    with hydra_configs():
        composed(COMMANDS[0])
        first = len(reads)
        composed(COMMANDS[0])
        composed(COMMANDS[1])
    assert first > 5  # the experiment, the one it includes, the groups, Hydra's own files
    assert len(reads) == len(set(reads))  # no file read twice, across three compositions
    assert "experiment/kwinners_sparse_cnn2" in reads and "experiment/mlp_regularizers" in reads


def test_a_composition_changed_by_its_user_changes_no_later_one():
    with hydra_configs():
        first = hydra.compose(config_name=CONFIG_NAME, overrides=COMMANDS[1])
        first.train.lr = 123.0
        first.model.hidden.append(7)
        again = composed(COMMANDS[1])
    assert again["train"]["lr"] == 0.1 and 7 not in again["model"]["hidden"]


def test_a_folder_on_the_search_path_is_read_as_its_own(tmp_path):
    for name, lr in (("a", 0.011), ("b", 0.022)):
        (tmp_path / name / "experiment").mkdir(parents=True)
        (tmp_path / name / "experiment" / "mine.yaml").write_text(f"# @package _global_\ntrain:\n  lr: {lr}\n")
    with hydra_configs():
        got = [composed(["experiment=mine", f"hydra.searchpath=[file://{tmp_path / name}]"])["train"]["lr"]
               for name in ("a", "b", "a")]
    assert got == [0.011, 0.022, 0.011]


def test_hydra_is_left_as_it_was():
    load = config_repository.ConfigRepository.load_config
    start = config_repository.CachingConfigRepository.__init__
    with hydra_configs():
        assert config_repository.ConfigRepository.load_config is not load
    assert config_repository.ConfigRepository.load_config is load
    assert config_repository.CachingConfigRepository.__init__ is start


def test_what_hydra_changes_in_a_loaded_file_reaches_no_later_load():
    """Hydra merges into what it loads (the primary config's hydra node popped, a schema merged in): each
    load is a copy of the file's kept form, not the form itself."""
    from sparsebench.hydra_reads import files_read_once

    with hydra_configs():
        repository = GlobalHydra.instance().config_loader().repository
        with files_read_once():  # (inside hydra_configs already: the same one stays in effect)
            first = repository.load_config("experiment/mlp_regularizers")
            first.config.train.lr = 999.0
            first.header["package"] = "elsewhere"
            first.defaults_list.clear()
            again = repository.load_config("experiment/mlp_regularizers")
    assert again.config.train.lr == 0.05 and again.header["package"] == "_global_" and again.defaults_list


def test_a_config_stored_again_in_code_is_read_as_stored():
    from hydra.core.config_store import ConfigStore

    store = ConfigStore.instance()
    try:
        with hydra_configs():
            lrs = []
            for lr in (0.5, 0.7):
                store.store(group="experiment", name="stored_in_code", node={"train": {"lr": lr}}, package="_global_")
                lrs.append(composed(["experiment=stored_in_code"])["train"]["lr"])
    finally:
        store.repo["experiment"].pop("stored_in_code.yaml", None)
    assert lrs == [0.5, 0.7]


def test_used_inside_itself_the_outer_one_stays_in_effect_until_it_ends():
    from sparsebench.hydra_reads import files_read_once

    load = config_repository.ConfigRepository.load_config
    with files_read_once():
        patched = config_repository.ConfigRepository.load_config
        with files_read_once():
            pass
        assert config_repository.ConfigRepository.load_config is patched is not load
    assert config_repository.ConfigRepository.load_config is load
