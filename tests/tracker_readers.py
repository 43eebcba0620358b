"""Read back what a run sent to W&B (offline), MLflow (file store) and TensorBoard, with each library's own reader.

W&B 0.31 ships no Python reader of its offline `.wandb` files any more (`wandb.sdk.internal.datastore`
is gone; wandb-core reads them), so `wandb_records` unframes the file (a LevelDB-style log: a 7-byte
`:W&B` header, 32 KiB blocks of records `crc32 <I, length <H, type <B`, FULL/FIRST/MIDDLE/LAST) and
parses each record with W&B's own protobuf schema (`wandb.proto.wandb_internal_pb2.Record`).
"""

from __future__ import annotations

import json
import struct
from pathlib import Path

_BLOCK = 32 * 1024
_HEADER = 7


def wandb_records(path: Path):
    """Every `Record` of one offline run's `.wandb` file, in order."""
    from wandb.proto import wandb_internal_pb2 as pb

    raw = Path(path).read_bytes()
    assert raw[:4] == b":W&B", f"{path}: not a W&B transaction log"
    pos, buf = _HEADER, b""
    while pos + _HEADER <= len(raw):
        left = _BLOCK - pos % _BLOCK
        if left < _HEADER:  # the block's tail is padding
            pos += left
            continue
        _crc, length, kind = struct.unpack("<IHB", raw[pos : pos + _HEADER])
        data, pos = raw[pos + _HEADER : pos + _HEADER + length], pos + _HEADER + length
        if kind in (1, 2):  # FULL, FIRST
            buf = data
        elif kind in (3, 4):  # MIDDLE, LAST
            buf += data
        else:  # zero padding at the end of the file
            continue
        if kind in (1, 4):
            record = pb.Record()
            record.ParseFromString(buf)
            yield record


def wandb_logged(run_dir: Path) -> tuple[list[dict], dict[str, dict[str, str]]]:
    """(history rows as {key: json value}, artifacts as {name: {path in artifact: local staged file}})."""
    wandb_file = next(Path(run_dir).glob("run-*.wandb"))
    history, artifacts = [], {}
    for r in wandb_records(wandb_file):
        kind = r.WhichOneof("record_type")
        if kind == "history":
            history.append({(i.key or "/".join(i.nested_key)): json.loads(i.value_json) for i in r.history.item})
        elif kind == "artifact":
            artifacts[r.artifact.name] = {e.path: e.local_path for e in r.artifact.manifest.contents}
    return history, artifacts
