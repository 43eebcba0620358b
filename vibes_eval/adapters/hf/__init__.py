"""The transformers-native loader (llava, llava_next, llava_onevision): model, processor, shared-prefix engine."""
