"""The partition pass on the Dask workers: the input cut into chunks, each chunk partitioned by a task
into its own shard of bucket files, then the shards of each bucket joined into one bucket file by a
task of its own (the copy is done by the kernel, `sendfile`).

Run in the main process, the pass was the one step that did not scale with workers (a tenth of a
one-worker screen, a sixth of a two-worker one). The shards live under the run's work directory,
which must be on a disk every worker sees when the cluster is remote (as the buckets must)."""

from __future__ import annotations

import math
import os
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import IO, Any

from distributed import Client

from smartapp.screening.cluster import worker_count
from smartapp.screening.errors import ErrorLog
from smartapp.screening.partition import BUCKET_BYTES, SIDE_FILE, Chunk, Partition, chunks, partition_chunk

MIN_CHUNK_BYTES = 4 * 1024 * 1024
CHUNKS_PER_WORKER = 4  # enough that a slow chunk or a large file does not leave a worker idle


def partition_on_cluster(
    client: Client,
    files: Sequence[Path],
    work_dir: Path,
    n_buckets: int,
    errors: ErrorLog,
    chunk_bytes: int | None = None,
) -> Partition:
    """What `partition.partition` gives for the same input (the same bucket files, byte for byte),
    partitioned by the cluster's workers. `chunk_bytes`: the chunk size (default from the input's
    size and the number of workers)."""
    work_dir.mkdir(parents=True, exist_ok=True)
    plan = chunks(files, chunk_bytes or chunk_size(files, worker_count(client)))
    shards = [work_dir / f"shard-{index:05d}" for index in range(len(plan))]
    futures = [
        client.submit(
            partition_chunk, str(chunk.path), chunk.start, chunk.end, str(shard), n_buckets, pure=False
        )
        for chunk, shard in zip(plan, shards, strict=True)
    ]
    try:
        # In chunk order (the line numbers of a file's later chunks follow from its earlier ones).
        # A worker lost mid-task has its task run again elsewhere by Dask; a task that raises (the
        # work directory unwritable, say) fails the run like any other partition failure.
        results: list[dict[str, Any]] = client.gather(futures)  # type: ignore[no-untyped-call]
        return _merge(client, plan, shards, results, work_dir, errors)
    finally:
        for shard in shards:
            shutil.rmtree(shard, ignore_errors=True)


def chunk_size(files: Sequence[Path], workers: int) -> int:
    total = sum(path.stat().st_size for path in files)
    return min(BUCKET_BYTES, max(MIN_CHUNK_BYTES, math.ceil(total / (CHUNKS_PER_WORKER * max(1, workers)))))


def _merge(
    client: Client,
    plan: list[Chunk],
    shards: list[Path],
    results: list[dict[str, Any]],
    work_dir: Path,
    errors: ErrorLog,
) -> Partition:
    merged = Partition(work_dir=work_dir, buckets=[], side=work_dir / SIDE_FILE)
    lines_before: dict[Path, int] = {}
    used: set[int] = set()
    for chunk, result in zip(plan, results, strict=True):
        offset = lines_before.get(chunk.path, 0)
        lines_before[chunk.path] = offset + int(result["lines"])
        merged.patients += int(result["patients"])
        merged.resources += int(result["resources"])
        merged.skipped.update(result["skipped"])
        used.update(result["used"])
        for cause, seen in result["failures"].items():
            for what, number in seen["examples"]:
                errors.add(cause, f"{what}{chunk.path.name} line {offset + number}")
            if int(seen["count"]) > len(seen["examples"]):
                errors.add(cause, count=int(seen["count"]) - len(seen["examples"]))
    merged.buckets = [work_dir / f"bucket-{bucket:05d}.ndjson" for bucket in sorted(used)]
    # Each file's shards joined by a task of its own, on the workers, in parallel.
    joins = [
        client.submit(join_shards, str(target), [str(shard / target.name) for shard in shards], pure=False)
        for target in [merged.side, *merged.buckets]
    ]
    client.gather(joins)  # type: ignore[no-untyped-call]
    return merged


def join_shards(target: str, shards: list[str]) -> str:
    """`target` made of the shard files in order (a chunk without lines for it has none)."""
    with Path(target).open("wb") as out:
        for shard in shards:
            _append(out, Path(shard))
    return target


def _append(out: IO[bytes], path: Path) -> None:
    """Copy a shard file (if the chunk had lines for it) to the end of `out`, in the kernel where it can."""
    try:
        source = path.open("rb")
    except FileNotFoundError:
        return
    with source:
        out.flush()
        size = os.fstat(source.fileno()).st_size
        try:
            sent = 0
            while sent < size:
                done = os.sendfile(out.fileno(), source.fileno(), sent, size - sent)
                if done == 0:
                    break
                sent += done
        except OSError:  # no sendfile between these files: copy the rest through this process
            source.seek(sent)
            shutil.copyfileobj(source, out)
