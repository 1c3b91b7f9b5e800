"""Writing pretraining data (§3.3): documents → wordpieces → single-segment blocks (packing) →
instances → TFRecord shards (writer, example codec), locally (`pipeline`) or on Apache Beam
(`beam_pipeline`, `beam_output`, `beam_reporting`), with the run's report (`report`)."""
