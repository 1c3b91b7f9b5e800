"""The training input: tf.data over the pretraining TFRecords (`input_pipeline`, static or
dynamic masking) and the shards' checks against metadata.json (`shard_check`)."""
