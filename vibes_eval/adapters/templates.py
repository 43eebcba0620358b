"""Known conversation templates of the LLaVA family (one user turn with one image).

Each template renders `<image>\\n{question}` into the text a model of that family was trained
on, up to where the assistant's answer begins. The HF hub templates are the processor chat
templates of the llava-hf checkpoints; the others are the original LLaVA repos' conversation
styles. Used as a profile's fallback, by `--template`, and by the template-fit probe.
"""

from __future__ import annotations

__all__ = ["TEMPLATES", "answer_cue", "render_template", "splice_template"]

_V1_SYS = (
    "A chat between a curious {who} and an artificial intelligence assistant. "
    "The assistant gives helpful, detailed, and polite answers to the {who}'s questions."
)
_L2_SYS = (
    "You are a helpful language and vision assistant. You are able to understand the visual content that the user "
    "provides, and assist the user with a variety of tasks using natural language."
)

TEMPLATES: dict[str, str] = {
    # HF hub processor chat templates
    "llava-1.5-hf": "USER: <image>\n{q} ASSISTANT:",
    "llava-next-mistral-hf": "[INST] <image>\n{q} [/INST]",
    "llava-onevision-hf": "<|im_start|>user <image>\n{q}<|im_end|><|im_start|>assistant\n",
    # original LLaVA / LLaVA-NeXT conversation styles
    "vicuna_v1": _V1_SYS.format(who="user") + " USER: <image>\n{q} ASSISTANT:",
    "llava_v1": _V1_SYS.format(who="human") + " USER: <image>\n{q} ASSISTANT:",
    "llava_v0": _V1_SYS.format(who="human") + "###Human: <image>\n{q}###Assistant:",
    "mistral_instruct": "[INST] <image>\n{q} [/INST]",
    "llava_llama_2": "[INST] <<SYS>>\n" + _L2_SYS + "\n<</SYS>>\n\n<image>\n{q} [/INST]",
    "chatml_direct": "<|im_start|>system\nAnswer the questions.<|im_end|><|im_start|>user\n<image>\n{q}<|im_end|><|im_start|>assistant\n",
    "qwen_1_5": (
        "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\n<image>\n{q}<|im_end|>\n<|im_start|>assistant\n"
    ),
    "plain": "<image>\n{q}\n",
    # LLaVA-MPT (conv_mpt: SeparatorStyle.MPT, no newline after <|im_end|>); its cue after the image is chatml_direct's
    "mpt": (
        "<|im_start|>system\nA conversation between a user and an LLM-based AI assistant. The assistant gives helpful and "
        "honest answers.<|im_end|><|im_start|>user\n<image>\n{q}<|im_end|><|im_start|>assistant\n"
    ),
}


def render_template(name: str, question: str) -> str:
    """The prompt text of template `name` for one image and `question` (answer not included).

    Raises:
        KeyError: `name` is not a known template; the message lists the known ones.
    """
    if name not in TEMPLATES:
        raise KeyError(f"unknown template {name!r}; known: {', '.join(TEMPLATES)}")
    return TEMPLATES[name].replace("{q}", question)


def answer_cue(name: str) -> str:
    """What template `name` puts after the image: the question's wrapper and the assistant's cue."""
    text = TEMPLATES[name]
    return text[text.index("<image>") + len("<image>") :]


def splice_template(prompt: str, image_token: str, name: str, question: str) -> str:
    """`prompt` (a rendered one-image prompt) up to its image, then template `name`'s text after the image.

    The template-fit probe scores references under such prompts: the image is presented as the
    checkpoint presents it, so its prefix (and KV cache) is the one the answers use, and each known
    template supplies the cue that precedes the answer. Templates that differ only before the
    image (a system prompt) cannot be told apart this way.
    """
    cut = prompt.index(image_token) + len(image_token) if image_token in prompt else prompt.index("<image>") + len("<image>")
    return prompt[:cut] + answer_cue(name).replace("{q}", question)
