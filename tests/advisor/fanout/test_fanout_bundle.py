"""What travels between the Ray driver and its tasks: the task folder out, the cache folders back."""

from __future__ import annotations

from pathlib import Path

import pytest

from advisor.fanout.bundle import bundle_task, install_cache, pack_cache, pack_folders, unpack_task
from harness.distributed import unshard
from harness.errors import InputError


def test_the_task_folder_travels_without_the_store_and_unpacks_whole(tmp_path: Path) -> None:
    source = tmp_path / "task"
    (source / "data").mkdir(parents=True)
    (source / "task.yaml").write_text("name: t\n", encoding="utf-8")
    (source / "data" / "train.jsonl").write_text('{"text": "a"}\n', encoding="utf-8")
    (source / ".advisor").mkdir()
    (source / ".advisor" / "store.sqlite").write_bytes(b"results stay with the driver")
    task = unpack_task(bundle_task(source / "task.yaml"), tmp_path / "copy")
    assert task == tmp_path / "copy" / "task.yaml" and task.read_text(encoding="utf-8") == "name: t\n"
    assert (tmp_path / "copy" / "data" / "train.jsonl").read_text(encoding="utf-8") == '{"text": "a"}\n'
    assert not (tmp_path / "copy" / ".advisor").exists()


def test_a_task_folder_too_large_to_send_is_one_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import advisor.fanout.bundle as bundle

    (tmp_path / "task.yaml").write_text("name: t\n", encoding="utf-8")
    (tmp_path / "corpus.txt").write_bytes(b"x" * 2048)
    monkeypatch.setattr(bundle, "MAX_BUNDLE_BYTES", 1024)
    with pytest.raises(InputError, match="to copy to each Ray worker"):
        bundle_task(tmp_path / "task.yaml")


def test_cache_folders_come_back_whole_and_never_replace_what_the_driver_has(tmp_path: Path) -> None:
    worker = tmp_path / "worker"
    for name, text in (("new", "trained in the task"), ("old", "trained in the task")):
        (worker / "adapters" / name).mkdir(parents=True)
        (worker / "adapters" / name / "card.json").write_text(text, encoding="utf-8")
    (worker / "adapters" / "half.partial").mkdir()
    (worker / "adapters" / "new.lock").write_text("", encoding="utf-8")
    driver = tmp_path / "driver"
    (driver / "adapters" / "old").mkdir(parents=True)
    (driver / "adapters" / "old" / "card.json").write_text("the driver's own", encoding="utf-8")
    installed = install_cache(pack_cache(worker), driver)
    assert installed == ["adapters/new"]
    assert (driver / "adapters" / "new" / "card.json").read_text(encoding="utf-8") == "trained in the task"
    assert (driver / "adapters" / "old" / "card.json").read_text(encoding="utf-8") == "the driver's own"
    assert sorted(p.name for p in (driver / "adapters").iterdir()) == ["new", "old"]
    assert [p.name for p in driver.iterdir() if p.name.startswith(".")] == []  # the staging folder is gone


def test_shares_of_a_chunk_merge_back_in_the_original_order() -> None:
    items = list(range(7))
    shares = [items[rank::3] for rank in range(3)]  # what shard() gives ranks 0, 1 and 2
    assert unshard(shares) == items
    assert unshard([[0], []]) == [0]


def test_a_store_kept_inside_the_task_folder_stays_with_the_driver(tmp_path: Path) -> None:
    (tmp_path / "task.yaml").write_text("name: t\n", encoding="utf-8")
    (tmp_path / "runs" / "ray-work").mkdir(parents=True)  # --store runs/store.sqlite: its tasks' work beside it
    (tmp_path / "runs" / "store.sqlite").write_bytes(b"results stay with the driver")
    unpack_task(bundle_task(tmp_path / "task.yaml", tmp_path / "runs"), tmp_path / "copy")
    assert sorted(p.name for p in (tmp_path / "copy").iterdir()) == ["task.yaml"]


def test_the_folders_the_driver_sent_a_task_do_not_come_back(tmp_path: Path) -> None:
    driver, task = tmp_path / "driver", tmp_path / "task"
    for name in ("sent", "made"):
        (driver if name == "sent" else task).joinpath("adapters", name).mkdir(parents=True)
        (driver if name == "sent" else task).joinpath("adapters", name, "card.json").write_text(name, encoding="utf-8")
    sent = install_cache(pack_folders(driver, [driver / "adapters" / "sent"]), task)
    assert sent == ["adapters/sent"] and (task / "adapters" / "sent" / "card.json").read_text() == "sent"
    assert install_cache(pack_cache(task, known=sent), tmp_path / "back") == ["adapters/made"]
