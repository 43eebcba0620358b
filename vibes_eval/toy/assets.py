"""The toy LLaVA's parts: tokenizer, image processor, processor, model config.

Everything is built locally (no hub): a byte-level BPE trained with `tokenizers` on the
shapes world's text, wrapped as a PreTrainedTokenizerFast; a CLIPImageProcessor at 64 px;
a LlavaProcessor with the llava-1.5-hf chat template; and a LlavaConfig with a tiny CLIP
tower, the 2-layer GELU projector and a tiny Llama.
"""

from __future__ import annotations

import random

from vibes_eval.toy import world

__all__ = ["LLAVA_15_TEMPLATE", "MISTRAL_TEMPLATE", "PATCH_SIZE", "TOY_GEOMETRY", "build_config", "build_processor"]

PATCH_SIZE = 16

# Verbatim llava-hf/llava-1.5-7b-hf chat template (its chat_template.json; tests/fixtures/reference_configs).
LLAVA_15_TEMPLATE = (
    "{% for message in messages %}{% if message['role'] != 'system' %}{{ message['role'].upper() + ': '}}{% endif %}"
    "{# Render all images first #}{% for content in message['content'] | selectattr('type', 'equalto', 'image') %}"
    "{{ '<image>\n' }}{% endfor %}{# Render all text next #}{% if message['role'] != 'assistant' %}"
    "{% for content in message['content'] | selectattr('type', 'equalto', 'text') %}{{ content['text'] + ' '}}{% endfor %}"
    "{% else %}{% for content in message['content'] | selectattr('type', 'equalto', 'text') %}{% generation %}"
    "{{ content['text'] + ' '}}{% endgeneration %}{% endfor %}{% endif %}{% endfor %}"
    "{% if add_generation_prompt %}{{ 'ASSISTANT:' }}{% endif %}"
)

# Verbatim llava-hf/llava-v1.6-mistral-7b-hf chat template: the `wrong-template` variant ships it.
MISTRAL_TEMPLATE = (
    "{% for message in messages %}{% if message['role'] == 'system' %}{{ '<<SYS>>\n' + message['content'][0]['text'] + "
    "'\n<</SYS>>\n\n' }}{% elif message['role'] == 'user' %}{{ '[INST] ' }}{# Render all images first #}"
    "{% for content in message['content'] | selectattr('type', 'equalto', 'image') %}{{ '<image>\n' }}{% endfor %}"
    "{# Render all text next #}{% for content in message['content'] | selectattr('type', 'equalto', 'text') %}"
    "{{ content['text'] }}{% endfor %}{{' [/INST]' }}{% elif message['role'] == 'assistant' %}"
    "{{ ' ' + message['content'][0]['text'] + '</s> '}}{% else %}"
    "{{ raise_exception('Only user and assistant roles are supported!') }}{% endif %}{% endfor %}"
)

SPECIALS = ["<unk>", "<s>", "</s>", "<pad>", "<image>"]


def _corpus(seed: int) -> list[str]:
    rng = random.Random(seed)
    lines = ["USER: ASSISTANT: [INST] [/INST] <|im_start|> <|im_end|> system user assistant ###Human: ###Assistant:"]
    for _ in range(400):
        scene = world.sample_scene(rng)
        for qa in world.qa_pairs(scene, rng):
            lines.append(f"USER: {qa.question} ASSISTANT: {qa.answer}")
    lines += [f"USER: {q} ASSISTANT: {world.REFUSAL}" for q in world.REFUSAL_QUESTIONS]
    return lines


def build_tokenizer(seed: int = 0, vocab_size: int = 512):
    """A byte-level BPE fitted to the shapes world's text, wrapped for transformers.

    Byte-level so that any text (a real suite's questions, a foreign template's tags)
    tokenizes without <unk>; the world's words end up as single tokens.
    """
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=SPECIALS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(_corpus(seed), trainer=trainer)
    bos = tok.token_to_id("<s>")
    tok.post_processor = processors.TemplateProcessing(single="<s> $A", pair="<s> $A <s> $B", special_tokens=[("<s>", bos)])
    return PreTrainedTokenizerFast(
        tokenizer_object=tok,
        bos_token="<s>",
        eos_token="</s>",
        unk_token="<unk>",
        pad_token="<pad>",
        padding_side="left",
        model_max_length=512,
        extra_special_tokens={"image_token": "<image>"},
    )


def build_processor(seed: int = 0):
    """The LlavaProcessor of the toy: CLIP image processor at 64 px, llava-1.5 chat template."""
    from transformers import CLIPImageProcessor, LlavaProcessor

    image_processor = CLIPImageProcessor(
        size={"shortest_edge": world.IMAGE_SIZE},
        crop_size={"height": world.IMAGE_SIZE, "width": world.IMAGE_SIZE},
    )
    return LlavaProcessor(
        image_processor=image_processor,
        tokenizer=build_tokenizer(seed),
        patch_size=PATCH_SIZE,
        vision_feature_select_strategy="default",
        # CLIP has a CLS token that strategy "default" drops: (64/16)^2 + 1 - 1 = 16 tokens.
        num_additional_image_tokens=1,
        chat_template=LLAVA_15_TEMPLATE,
        image_token="<image>",
    )


TOY_GEOMETRY: dict[str, int] = {
    "image_size": world.IMAGE_SIZE, "patch_size": PATCH_SIZE,
    "vision_hidden": 96, "vision_intermediate": 384, "vision_layers": 3, "vision_heads": 4, "projection_dim": 96,
    "text_hidden": 128, "text_intermediate": 384, "text_layers": 4, "text_heads": 4, "vocab_size": 0,
}
"""The toy's size (about 1.4 M parameters); vocab_size 0 means the tokenizer's own size."""


def build_config(tokenizer, geometry: dict | None = None, *, max_positions: int = 256, **text_extra):
    """A LlavaConfig of `geometry` (default: the toy's), CLIP tower + 2-layer GELU projector + Llama.

    Args:
        tokenizer: gives the vocabulary size and the special token ids.
        geometry: keys of TOY_GEOMETRY to override (toy/bench.py passes llava-1.5's).
        max_positions: the Llama's max_position_embeddings.
        **text_extra: further LlamaConfig settings (e.g. rms_norm_eps).
    """
    from transformers import CLIPVisionConfig, LlamaConfig, LlavaConfig

    g = {**TOY_GEOMETRY, **(geometry or {})}
    vision = CLIPVisionConfig(
        hidden_size=g["vision_hidden"],
        intermediate_size=g["vision_intermediate"],
        num_hidden_layers=g["vision_layers"],
        num_attention_heads=g["vision_heads"],
        image_size=g["image_size"],
        patch_size=g["patch_size"],
        projection_dim=g["projection_dim"],
    )
    text = LlamaConfig(
        vocab_size=max(g["vocab_size"], len(tokenizer)),
        hidden_size=g["text_hidden"],
        intermediate_size=g["text_intermediate"],
        num_hidden_layers=g["text_layers"],
        num_attention_heads=g["text_heads"],
        num_key_value_heads=g["text_heads"],
        max_position_embeddings=max_positions,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        tie_word_embeddings=False,
        **text_extra,
    )
    return LlavaConfig(
        vision_config=vision,
        text_config=text,
        image_token_index=tokenizer.convert_tokens_to_ids("<image>"),
        projector_hidden_act="gelu",
        vision_feature_layer=-2,
        vision_feature_select_strategy="default",
        pad_token_id=tokenizer.pad_token_id,
        tie_word_embeddings=False,
    )
