"""The inference engine: text front end, model, sampler and vocoder."""
