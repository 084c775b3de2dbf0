"""World clips for training: the format-generic shard dataset, defaulting to long captions."""

from __future__ import annotations

from tenku.data.dataset import ShardDataset, frames_to_tensor


class WorldDataset(ShardDataset):
    """``WorldDataset(root, split=None, caption="long", num_frames=None)``: see :class:`ShardDataset`."""


__all__ = ["ShardDataset", "WorldDataset", "frames_to_tensor"]
