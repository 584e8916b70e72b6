"""`clipshoe-tiny-hf`: the default model's kind, small enough for CI.

The default base model (`xlm-roberta-base-ViT-B-32`) has a Hugging Face text tower:
open_clip builds it with `transformers` from `hf_model_name` and tokenizes with
`HFTokenizer(hf_tokenizer_name)`, both normally fetched from the hub. So that every code
path it takes runs offline in tests and CI, this model has the same structure at toy
size: an XLM-RoBERTa text tower (2 layers, 64 wide, random weights drawn from a fixed
seed) and a SentencePiece-style unigram tokenizer built with `tokenizers` from the
replay shop's Vietnamese titles and descriptions and the evaluation's prompts, saved
in the layout `transformers` reads from the hub (config.json, model.safetensors,
tokenizer.json, tokenizer_config.json). Built once per machine into the cache, with
the same bytes every time; its open_clip config names that folder by absolute path.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import tempfile
import unicodedata
from collections import Counter
from collections.abc import Iterable, Iterator
from pathlib import Path

from clipshoe_common.files import atomic_file
from clipshoe_pipeline.settings import cache_dir

TINY_HF_MODEL = "clipshoe-tiny-hf"
# Bump when anything below changes what is built: a cached folder of an older version is rebuilt beside it.
VERSION = 1
CONTEXT_LENGTH = 32
VOCAB_SIZE = 2000
WIDTH = 64
SEED = 0
WORD_START = "\u2581"  # SentencePiece's "▁", as XLM-R's pieces mark a word's start
CHARACTER_PENALTY = 10.0  # a word split into characters scores below any known syllable piece
SPECIAL_TOKENS = ("<s>", "<pad>", "</s>", "<unk>", "<mask>")  # XLM-R's ids 0-3; <mask> last here
CORPUS_PRODUCTS_PER_SITE = 200
_VISION_CFG = {"image_size": 64, "layers": 2, "width": 64, "head_width": 32, "patch_size": 16}  # clipshoe-tiny's


def text_tower_dir() -> Path:
    return cache_dir() / f"tiny-text-tower-v{VERSION}"


def model_config() -> dict:
    """The open_clip model config: clipshoe-tiny's image tower, the HF text tower."""
    folder = str(text_tower_dir())
    return {"embed_dim": WIDTH, "vision_cfg": _VISION_CFG,
            "text_cfg": {"hf_model_name": folder, "hf_tokenizer_name": folder, "hf_pooler_type": "mean_pooler",
                         "context_length": CONTEXT_LENGTH}}


def model_config_file() -> Path:
    """The config as a file open_clip.add_model_config reads (the file name is the model name)."""
    path = text_tower_dir().with_name(f"{TINY_HF_MODEL}.json")
    text = json.dumps(model_config(), indent=2)
    if not path.is_file() or path.read_text() != text:
        with atomic_file(path, "w") as sink:
            sink.write(text)
    return path


def ensure_text_tower() -> Path:
    """The text tower's folder, built first if this machine has none yet. Built in a
    temporary folder and renamed into place, so concurrent builders (test workers)
    never see half a folder; the first rename wins, and they build identical bytes."""
    folder = text_tower_dir()
    if (folder / "config.json").is_file():
        return folder
    folder.parent.mkdir(parents=True, exist_ok=True)
    building = Path(tempfile.mkdtemp(prefix=f".{folder.name}-", dir=folder.parent))
    try:
        build_text_tower(building)
        try:
            os.rename(building, folder)
        except OSError:
            if not (folder / "config.json").is_file():
                raise
    finally:
        shutil.rmtree(building, ignore_errors=True)
    return folder


def build_text_tower(folder: Path) -> None:
    """Tokenizer and randomly initialised XLM-RoBERTa text tower, saved into `folder`."""
    import torch
    from transformers import PreTrainedTokenizerFast, XLMRobertaConfig, XLMRobertaModel

    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=build_tokenizer(corpus()), model_max_length=CONTEXT_LENGTH,
        **dict(zip(("bos_token", "pad_token", "eos_token", "unk_token", "mask_token"), SPECIAL_TOKENS)))
    tokenizer.save_pretrained(folder)
    config = XLMRobertaConfig(
        vocab_size=len(tokenizer), hidden_size=WIDTH, num_hidden_layers=2, num_attention_heads=2,
        intermediate_size=2 * WIDTH, type_vocab_size=1, pad_token_id=tokenizer.pad_token_id,
        bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
        # RoBERTa numbers positions from pad_token_id + 1
        max_position_embeddings=CONTEXT_LENGTH + tokenizer.pad_token_id + 1)
    torch.manual_seed(SEED)
    XLMRobertaModel(config, add_pooling_layer=False).save_pretrained(folder)


def build_tokenizer(texts: Iterable[str]):
    """A unigram tokenizer over NFC text with XLM-R's special tokens, ids and template.
    Its pieces are the corpus's most frequent syllables (Vietnamese writes one syllable
    per space-separated word) and every character it holds, scored by log frequency,
    so unknown words fall back to characters. Counted here rather than by the
    `tokenizers` trainer, whose hash-map order makes every build's ids differ."""
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors

    words, characters = Counter(), Counter()
    for text in texts:
        for word in unicodedata.normalize("NFC", text).split():
            words[WORD_START + word] += 1
            characters.update(word)
    characters[WORD_START] = sum(words.values())
    total = sum(words.values()) + sum(characters.values())
    frequent = sorted(words.items(), key=lambda entry: (-entry[1], entry[0]))
    frequent = frequent[:VOCAB_SIZE - len(SPECIAL_TOKENS) - len(characters)]
    pieces = [(token, 0.0) for token in SPECIAL_TOKENS]
    pieces += [(piece, math.log(count / total)) for piece, count in frequent]
    pieces += [(piece, math.log(count / total) - CHARACTER_PENALTY)
               for piece, count in sorted(characters.items(), key=lambda entry: (-entry[1], entry[0]))]
    tokenizer = Tokenizer(models.Unigram(pieces, unk_id=SPECIAL_TOKENS.index("<unk>")))
    tokenizer.normalizer = normalizers.NFC()
    tokenizer.pre_tokenizer = pre_tokenizers.Metaspace(replacement=WORD_START)
    tokenizer.decoder = decoders.Metaspace(replacement=WORD_START)
    bos, eos = SPECIAL_TOKENS[0], SPECIAL_TOKENS[2]
    tokenizer.post_processor = processors.TemplateProcessing(
        single=f"{bos} $A {eos}", pair=f"{bos} $A {eos} {eos} $B {eos}",
        special_tokens=[(bos, SPECIAL_TOKENS.index(bos)), (eos, SPECIAL_TOKENS.index(eos))])
    return tokenizer


def corpus() -> Iterator[str]:
    """What the tiny model will read: the replay shop's titles and descriptions (its
    training captions are built from them) and the zero-shot prompts in both languages."""
    from clipshoe_common.text import html_to_text
    from clipshoe_pipeline.evaluation.templates import CLASS_TEXTS, TEMPLATES
    from replay_shop.catalog import Catalog
    from scrapers.items import SITES

    catalog = Catalog(seed=0, products_per_site=CORPUS_PRODUCTS_PER_SITE)
    for site in SITES:
        for product in catalog.products(site):
            yield product.title
            yield html_to_text(product.description_html)
    for language, by_attribute in TEMPLATES.items():
        words = [text for texts in CLASS_TEXTS.get(language, {}).values() for text in texts.values()]
        for templates in by_attribute.values():
            yield from (template.format(word) for template in templates for word in words)
