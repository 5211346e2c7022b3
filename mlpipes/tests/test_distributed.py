"""Data-parallel helpers: the epoch sampler's shares, device choice, and real gloo collectives."""

from __future__ import annotations

import itertools
import json
import os
from pathlib import Path

import pytest
import torch
import torch.multiprocessing as mp

from mlpipes import distributed
from mlpipes.errors import UserError
from mlpipes.testing import free_ports


@pytest.mark.parametrize("count", [1, 10, 11, 1000, 1003])
@pytest.mark.parametrize("world", [1, 2, 3, 4])
def test_epoch_shares_are_equal_disjoint_and_drop_only_the_remainder(count: int, world: int) -> None:
    shares = [distributed.epoch_indices(count, seed=7, epoch=2, for_rank=r, world=world).tolist() for r in range(world)]
    assert {len(s) for s in shares} == {count // world}
    taken = [i for s in shares for i in s]
    assert len(set(taken)) == len(taken) == count // world * world
    assert set(taken) <= set(range(count))


@pytest.mark.parametrize("count", [0, 1, 10, 11, 1003])
@pytest.mark.parametrize("world", [1, 2, 3, 7])
def test_share_bounds_equal_for_training_and_covering_for_evaluation(count: int, world: int) -> None:
    equal = [distributed.share_bounds(count, r, world) for r in range(world)]
    assert {stop - start for start, stop in equal} == {count // world}
    assert all(a[1] == b[0] for a, b in itertools.pairwise(equal)) and equal[0][0] == 0  # contiguous, disjoint
    cover = [distributed.share_bounds(count, r, world, equal=False) for r in range(world)]
    assert [i for start, stop in cover for i in range(start, stop)] == list(range(count))  # every item once
    assert max(b - a for a, b in cover) - min(b - a for a, b in cover) <= 1
    with pytest.raises(ValueError, match=f"rank {world} outside a world of {world}"):
        distributed.share_bounds(count, world, world)


def test_epoch_order_is_seeded_by_seed_and_epoch() -> None:
    first = distributed.epoch_indices(500, seed=1, epoch=0, for_rank=0, world=2)
    assert torch.equal(first, distributed.epoch_indices(500, seed=1, epoch=0, for_rank=0, world=2))
    assert not torch.equal(first, distributed.epoch_indices(500, seed=1, epoch=1, for_rank=0, world=2))
    assert not torch.equal(first, distributed.epoch_indices(500, seed=2, epoch=0, for_rank=0, world=2))


def test_ranks_together_see_the_single_process_batches() -> None:
    """Global batch 12 over 3 ranks (4 each): step s of all ranks = step s of one process."""
    count, batch, world = 100, 12, 3
    alone = distributed.epoch_indices(count, seed=0, epoch=3, for_rank=0, world=1)
    shares = [distributed.epoch_indices(count, seed=0, epoch=3, for_rank=r, world=world) for r in range(world)]
    per_rank = batch // world
    for step in range(count // batch):
        together = torch.cat([s[step * per_rank : (step + 1) * per_rank] for s in shares])
        assert sorted(together.tolist()) == sorted(alone[step * batch : (step + 1) * batch].tolist())


def test_epoch_indices_refuses_a_rank_outside_the_world() -> None:
    with pytest.raises(ValueError, match="rank 2 outside a world of 2"):
        distributed.epoch_indices(10, seed=0, epoch=0, for_rank=2, world=2)


def test_plain_process_is_a_world_of_one(monkeypatch: pytest.MonkeyPatch) -> None:
    for key in ("RANK", "WORLD_SIZE", "LOCAL_RANK"):
        monkeypatch.delenv(key, raising=False)
    assert distributed.setup("cpu") == torch.device("cpu")
    assert not torch.distributed.is_initialized()
    assert (distributed.rank(), distributed.world_size(), distributed.is_main()) == (0, 1, True)
    assert distributed.all_reduce_sum(torch.tensor([1.5, 2.0])).tolist() == [1.5, 2.0]
    assert distributed.main_only(lambda: "ran") == "ran"
    assert distributed.broadcast_object({"a": 1}) == {"a": 1}
    with distributed.local_main_first():
        distributed.barrier()


def test_device_choice(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert distributed.pick_device("auto") == torch.device("cpu")
    with pytest.raises(UserError, match="no CUDA GPU"):
        distributed.pick_device("cuda")
    with pytest.raises(UserError, match="'tpu'"):
        distributed.pick_device("tpu")
    assert distributed.backend_for(torch.device("cpu")) == "gloo"


def test_each_local_rank_gets_its_own_gpu(monkeypatch: pytest.MonkeyPatch) -> None:
    """Selection logic only: this machine has no GPU, so CUDA is faked as two devices."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    monkeypatch.setenv("LOCAL_RANK", "1")
    assert distributed.pick_device("auto") == torch.device("cuda", 1)
    assert distributed.pick_device("cpu") == torch.device("cpu")
    assert distributed.backend_for(torch.device("cuda", 1)) == "cpu:gloo,cuda:nccl"
    monkeypatch.setenv("LOCAL_RANK", "2")
    with pytest.raises(UserError, match="LOCAL_RANK 2 but only 2 CUDA GPU"):
        distributed.pick_device("cuda")


def _refuse() -> None:
    raise UserError("refused on rank 0")


def _append_rank(path: Path) -> None:
    with open(path, "a") as f:
        f.write(f"{distributed.rank()}\n")


def _worker(rank: int, world: int, port: int, out: Path) -> None:
    """One rank, with the environment torchrun would give it."""
    env = {"RANK": rank, "WORLD_SIZE": world, "LOCAL_RANK": rank, "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": port}
    os.environ.update({k: str(v) for k, v in env.items()})
    distributed.setup("cpu")
    result: dict = {"rank": distributed.rank(), "world": distributed.world_size()}
    result["sum"] = distributed.all_reduce_sum(torch.tensor([rank + 1.0, 0.25])).tolist()
    result["counts"] = distributed.all_reduce_sum(torch.tensor([rank, 1])).tolist()
    result["main_only"] = distributed.main_only(lambda: f"computed on rank {distributed.rank()}")
    distributed.main_only(lambda: _append_rank(out / "writes.log"))
    try:
        distributed.main_only(_refuse)
    except UserError as e:
        result["error"] = str(e)
    batch_norm = torch.nn.BatchNorm1d(3)
    batch_norm.running_mean.fill_(float(rank + 5))
    distributed.broadcast_buffers(batch_norm)
    result["running_mean"] = batch_norm.running_mean.tolist()
    result["indices"] = distributed.epoch_indices(11, seed=3, epoch=1).tolist()
    (out / f"rank{rank}.json").write_text(json.dumps(result))
    distributed.cleanup()


def test_collectives_across_two_gloo_processes(tmp_path: Path) -> None:
    world = 2
    mp.start_processes(_worker, args=(world, free_ports(1)[0], tmp_path), nprocs=world, start_method="spawn")
    results = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in range(world)]
    assert [(r["rank"], r["world"]) for r in results] == [(0, 2), (1, 2)]
    for r in results:
        assert r["sum"] == [3.0, 0.5]
        assert r["counts"] == [1, 2]
        assert r["main_only"] == "computed on rank 0"
        assert r["error"] == "refused on rank 0"  # rank 1 raises rank 0's error instead of waiting
        assert r["running_mean"] == [5.0, 5.0, 5.0]
    assert (tmp_path / "writes.log").read_text() == "0\n"
    assert [len(r["indices"]) for r in results] == [5, 5]
    assert not set(results[0]["indices"]) & set(results[1]["indices"])
