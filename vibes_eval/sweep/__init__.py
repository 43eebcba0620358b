"""Many checkpoints: read-ahead, shards, one worker process per device."""
