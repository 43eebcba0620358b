"""The original LLaVA repos' tokenization of a prompt with images (`tokenizer_image_token`).

The training code never tokenized `<image>` as a token: it split the prompt on `<image>`,
tokenized each chunk on its own (each with the tokenizer's bos), joined the chunks with the
image index, and kept only the first chunk's bos. With a sentencepiece (Llama/Vicuna/Mistral)
tokenizer each chunk after an image starts with its own `▁` (29871): `USER: <image>\\nWhat`
is `29871, <image>, 29871, 13, ...`. Tokenizing the whole text with `<image>` as an added
special token loses that `▁` after every image, so the model is asked something it was never
trained on. A smoke test must ask exactly what the training code asked.

`original_tokenization(tok)` makes `tok(text)` (what the processor and the prefix engine call)
produce those ids for any text holding the image token; other texts tokenize as before.
"""

from __future__ import annotations

__all__ = ["image_split_ids", "original_tokenization"]


def image_split_ids(encode, text: str, image_token: str, image_id: int, bos_id: int | None) -> list[int]:
    """`tokenizer_image_token` of the original repos, with `image_id` where `<image>` stood.

    Args:
        encode: text -> ids with the tokenizer's special tokens (bos), as `tokenizer(chunk).input_ids`.
        text: the prompt; every `image_token` in it is one image position.
        image_token: the placeholder text (`<image>`).
        image_id: the id put in its place (the original used -200 and spliced features there).
        bos_id: the tokenizer's bos id; only the first chunk keeps it.
    """
    chunks = [list(encode(c)) for c in text.split(image_token)]
    offset = 1 if chunks and chunks[0] and bos_id is not None and chunks[0][0] == bos_id else 0
    out = chunks[0][:1] if offset else []
    for k, chunk in enumerate(chunks):
        if k:
            out.append(image_id)
        out.extend(chunk[offset:])
    return out


def original_tokenization(tok, image_token: str = "<image>"):
    """Switch `tok` (in place) to the original repos' chunk-wise tokenization around `image_token`; returns it."""
    base = type(tok)
    if getattr(base, "_vibes_original", False):
        return tok

    def __call__(self, text=None, *args, **kwargs):
        texts = [text] if isinstance(text, str) else text
        if args or not isinstance(texts, (list, tuple)) or not any(isinstance(t, str) and image_token in t for t in texts):
            return base.__call__(self, text, *args, **kwargs)
        image_id = self.convert_tokens_to_ids(image_token)

        special = kwargs.get("add_special_tokens", True)

        def encode(chunk: str) -> list[int]:
            return base.__call__(self, chunk, add_special_tokens=special)["input_ids"]

        ids = [image_split_ids(encode, t, image_token, image_id, self.bos_token_id) for t in texts]
        pad_kw = {k: kwargs[k] for k in ("padding", "return_tensors", "padding_side", "pad_to_multiple_of") if k in kwargs}
        if isinstance(text, str) and not kwargs.get("return_tensors"):
            return self.pad({"input_ids": ids[0]}, **pad_kw)
        return self.pad({"input_ids": ids}, **pad_kw)

    tok.__class__ = type(base.__name__, (base,), {"__call__": __call__, "_vibes_original": True, "__module__": base.__module__})
    return tok
