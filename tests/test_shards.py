"""The shard format: complete shards only, resumable writers, clear errors."""

import json

import numpy as np
import pytest

from tenku.data.shards import (ShardWriter, completed_shards, iter_records, parse_shard_spec,
                               write_dataset_info)
from tenku.errors import TenkuError
from tenku.media import read_video


def test_write_and_read_records(tmp_path):
    write_dataset_info(tmp_path, source="test")
    frames = np.full((5, 16, 16, 3), 200, np.uint8)
    with ShardWriter(tmp_path, 0) as w:
        w.add(frames, 8, {"short": "a grey square"}, meta={"k": 1}, split="train")
        w.add(frames, 8, {"long": "a long caption"}, split="test_id")
    assert completed_shards(tmp_path) == {0}
    recs = list(iter_records(tmp_path))
    assert [r["id"] for r in recs] == ["shard-00000/000000", "shard-00000/000001"]
    assert recs[0]["captions"] == {"short": "a grey square", "medium": "", "long": ""}
    assert read_video(recs[1]["video"])[0].shape == (5, 16, 16, 3)
    assert [r["id"] for r in iter_records(tmp_path, split="test_id")] == ["shard-00000/000001"]
    assert json.loads((tmp_path / "dataset.json").read_text())["format"] == "tenku-shards"


def test_interrupted_shard_is_not_complete(tmp_path):
    with pytest.raises(RuntimeError):
        with ShardWriter(tmp_path, 3) as w:
            w.add(np.zeros((1, 8, 8, 3), np.uint8), 8)
            raise RuntimeError("killed")
    assert completed_shards(tmp_path) == set()
    with pytest.raises(TenkuError, match="no complete shards"):
        list(iter_records(tmp_path))


@pytest.mark.parametrize("spec,expected", [(None, (0, 1)), ("0/4", (0, 4)), (" 3 / 4 ", (3, 4))])
def test_shard_spec(spec, expected):
    assert parse_shard_spec(spec) == expected


@pytest.mark.parametrize("spec", ["4/4", "a/b", "1", "-1/2", "0/0"])
def test_bad_shard_spec(spec):
    with pytest.raises(TenkuError, match="i/n"):
        parse_shard_spec(spec)
