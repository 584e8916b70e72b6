"""Run config mirrored from the libraries' config dataclasses: one definition of each
default, nested sections, the dataclass's own validation before a run starts."""

import dataclasses

import dagster as dg
import pydantic
import pytest

from clipshoe_pipeline.curation.config import CurationConfig, NormaliseConfig
from clipshoe_pipeline.defs.curate.assets import CurateConfig
from clipshoe_pipeline.defs.finetune.config import FinetuneConfig
from clipshoe_pipeline.training.export import ExportConfig


def test_the_run_configs_build_the_libraries_defaults():
    assert CurateConfig().curation.build() == CurationConfig()
    assert CurateConfig().images.build() == NormaliseConfig()
    assert FinetuneConfig(seed=3).export_config() == ExportConfig(seed=3)
    assert "seed" not in FinetuneConfig().export.model_dump()  # one seed, the trainer's


def test_every_dataclass_field_is_settable_and_reaches_the_dataclass():
    changed = CurateConfig(curation={"dedup": {"phash_radius": 2, "verify_distance": None},
                                     "caption": {"max_chars": 120}, "max_pairs_per_seller": 5},
                           images={"short_side": 256}).curation.build()
    assert changed.dedup.phash_radius == 2 and changed.dedup.verify_distance is None
    assert changed.caption.max_chars == 120 and changed.max_pairs_per_seller == 5
    assert {f.name for f in dataclasses.fields(CurationConfig)} == set(CurateConfig().curation.model_dump())


@pytest.mark.parametrize("config, message", [
    ({"curation": {"dedup": {"phash_radius": 64}}}, "phash_radius must be in"),
    ({"images": {"short_side": 100}}, "short_side must be in"),
    ({"curation": {"test_fraction": "a lot"}}, "test_fraction"),
])
def test_values_the_dataclass_refuses_are_refused_when_the_config_is_made(config, message):
    with pytest.raises(pydantic.ValidationError, match=message):
        CurateConfig(**config)


def test_dagster_takes_the_nested_sections_as_run_config():
    seen = []

    @dg.asset
    def probe(config: CurateConfig) -> None:
        seen.append(config.curation.build().dedup.dhash_radius)

    assert dg.materialize([probe]).success
    run_config = {"ops": {"probe": {"config": {"curation": {"dedup": {"dhash_radius": 5}}}}}}
    assert dg.materialize([probe], run_config=run_config).success
    assert seen == [CurationConfig().dedup.dhash_radius, 5]
    refused = dg.materialize([probe], run_config={"ops": {"probe": {"config": {"curation": {"dedup": {
        "dhash_radius": 99}}}}}}, raise_on_error=False)
    assert not refused.success and seen == [8, 5]
