"""A Whisper the tests build: random weights, one layer each side, a vocabulary of letters,
saved as a Hugging Face repository is (config, weights, tokenizer, feature extractor), so that
the real speech-recognition backend runs on it without a download. It hears garbage."""

from __future__ import annotations

import json
import string
from pathlib import Path

SPECIAL = ["<|endoftext|>", "<|startoftranscript|>", "<|notimestamps|>"]


def build_tiny_whisper(folder: Path) -> Path:
    """Write the model into ``folder`` (created) and return it. Its first token is always a
    letter and it stops after 12 tokens, so every clip is heard as a few letters."""
    import torch
    from transformers import (
        WhisperConfig,
        WhisperFeatureExtractor,
        WhisperForConditionalGeneration,
        WhisperTokenizer,
    )

    folder.mkdir(parents=True, exist_ok=True)
    letters = list(string.ascii_lowercase)
    vocab = {token: i for i, token in enumerate([*letters, "Ġ", ".", *SPECIAL])}
    (folder / "vocab.json").write_text(json.dumps(vocab))
    (folder / "merges.txt").write_text("#version: 0.2\n")
    end = vocab["<|endoftext|>"]
    tokenizer = WhisperTokenizer(
        str(folder / "vocab.json"),
        str(folder / "merges.txt"),
        unk_token="<|endoftext|>",
        bos_token="<|endoftext|>",
        eos_token="<|endoftext|>",
        pad_token="<|endoftext|>",
    )
    config = WhisperConfig(
        vocab_size=len(vocab),
        num_mel_bins=80,
        encoder_layers=1,
        decoder_layers=1,
        d_model=16,
        encoder_attention_heads=2,
        decoder_attention_heads=2,
        encoder_ffn_dim=32,
        decoder_ffn_dim=32,
        max_target_positions=64,
        decoder_start_token_id=vocab["<|startoftranscript|>"],
        eos_token_id=end,
        pad_token_id=end,
        bos_token_id=end,
        suppress_tokens=None,
        # the first token is a letter: never an empty transcript
        begin_suppress_tokens=[i for t, i in vocab.items() if t not in letters],
    )
    torch.manual_seed(0)
    model = WhisperForConditionalGeneration(config).eval()
    model.generation_config.max_length = 12
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    WhisperFeatureExtractor(feature_size=80).save_pretrained(folder)
    return folder
